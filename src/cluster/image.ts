// The node base image: debootstrapped once, cached as .tar.zst, unpacked once next to it as the
// shared read-only lower layer of every node overlay of every cluster.
import { $ } from 'zx';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterConfig } from './config.ts';
import { run, umountUnder } from './host.ts';

// Everything a node needs is preinstalled: nodes have no route to any mirror.
export const IMAGE_PACKAGES = [
  'systemd', 'systemd-sysv', 'dbus', 'openssh-server', 'sudo', 'ufw', 'iptables', 'nftables',
  'iproute2', 'iputils-ping', 'netcat-openbsd', 'procps', 'kmod', 'udev', 'ca-certificates',
  'python3', 'coturn', 'knot', 'caddy', 'wireguard-tools', 'wireguard-go', 'libstdc++6', 'curl',
  // mediasoup's worker (roles/sfu ships it to /opt/orama/lib/mediasoup-worker) is linked against
  // Debian's libraries: these are the packages of what `ldd` lists for it (libstdc++6 above too);
  // the sfu role fails on a node where one is missing.
  'libuv1', 'libssl3', 'libsrtp2-1', 'libnss3', 'libnspr4', 'libabsl20220623',
];
const SUITE = 'bookworm';
// From the repository's root (two levels up, from src/cluster/ and from the bundled dist/cli/ alike).
const SETUP_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cluster', 'image-setup.sh');

export function imageKey(): string {
  const h = createHash('sha256');
  h.update(`${SUITE}\nminbase\n${IMAGE_PACKAGES.join(',')}\n`);
  h.update(readFileSync(SETUP_SCRIPT));
  return h.digest('hex').slice(0, 16);
}

export function imagePath(c: ClusterConfig): string {
  return join(c.cacheDir, 'images', `${SUITE}-${imageKey()}.tar.zst`);
}

/** Builds the image unless the cache already has this exact one. Returns the tarball path. */
export async function ensureImage(c: ClusterConfig, log: (m: string) => void): Promise<string> {
  const tarball = imagePath(c);
  if (existsSync(tarball)) return tarball;
  const work = join(dirname(tarball), `.build-${imageKey()}-${process.pid}`);
  const rootfs = join(work, 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  const mirror = process.env.ORAMA_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
  log(`image: building ${tarball} (debootstrap ${SUITE} from ${mirror}, about 2 minutes)`);
  try {
    // --foreign splits download from configure, so a policy-rc.d can stop package scripts from
    // starting daemons (coturn would bind the host's 3478) inside the chroot.
    await run(`debootstrap first stage into ${rootfs}`,
      $`debootstrap --foreign --variant=minbase --include=${IMAGE_PACKAGES.join(',')} ${SUITE} ${rootfs} ${mirror}`);
    writeFileSync(join(rootfs, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    await run(`debootstrap second stage in ${rootfs}`, $`chroot ${rootfs} /debootstrap/debootstrap --second-stage`);
    await run(`image setup script ${SETUP_SCRIPT} in ${rootfs}`,
      $({ input: readFileSync(SETUP_SCRIPT) })`chroot ${rootfs} /bin/bash -s`);
    rmSync(join(rootfs, 'usr/sbin/policy-rc.d'), { force: true });
    await umountUnder(rootfs);
    const tmp = `${tarball}.tmp-${process.pid}`;
    await run(`packing ${rootfs} into ${tmp}`,
      $`tar --numeric-owner --xattrs --xattrs-include='*' -C ${rootfs} -cf - . | zstd -q -T0 -6 -o ${tmp}`);
    renameSync(tmp, tarball);
  } finally {
    await umountUnder(rootfs);
    rmSync(work, { recursive: true, force: true });
  }
  return tarball;
}

/** The image unpacked once next to its tarball: the read-only lower layer of every node of every
 * cluster, so neither a second cluster nor `down --wipe` pays for unpacking again. */
export async function ensureUnpacked(tarball: string): Promise<string> {
  const rootfs = tarball.replace(/\.tar\.zst$/, '');
  if (existsSync(join(rootfs, 'etc'))) return rootfs;
  // Unpacked aside and renamed, so a crash never leaves a half image where a complete one is expected.
  const tmp = `${rootfs}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    await run(`unpacking ${tarball} into ${tmp}`,
      $`zstd -q -d -c ${tarball} | tar --numeric-owner --xattrs --xattrs-include='*' -C ${tmp} -xf -`);
    rmSync(rootfs, { recursive: true, force: true });
    renameSync(tmp, rootfs);
  } finally { rmSync(tmp, { recursive: true, force: true }); }
  return rootfs;
}

const baseMarker = (c: ClusterConfig) => join(c.stateDir, 'base.image');

/** Which image this cluster's node overlays were made over: 'stale' means another one. */
export function overlayBase(c: ClusterConfig, rootfs: string): 'current' | 'stale' | 'none' {
  const marker = baseMarker(c);
  if (!existsSync(marker)) return 'none';
  return readFileSync(marker, 'utf8').trim() === rootfs ? 'current' : 'stale';
}

export function recordOverlayBase(c: ClusterConfig, rootfs: string): void {
  writeFileSync(baseMarker(c), `${rootfs}\n`);
}
