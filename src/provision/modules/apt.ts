// apt: packages present / absent / latest, and update_cache with a validity window.
import { shellQuote } from '../transport/transport.ts';
import { defineModule, noChange, type Change, type Planned, type Step } from './module.ts';

interface AptArgs {
  name?: string | string[];
  state?: 'present' | 'absent' | 'latest';
  update_cache?: boolean;
  cache_valid_time?: number;
}

export interface AptFacts {
  /** package → installed version (absent = not installed) */
  installed: Record<string, string>;
  /** package → candidate version (only gathered for state: latest) */
  candidate: Record<string, string>;
  /** seconds since the last `apt-get update` */
  cacheAge: number;
}

const names = (a: AptArgs) => (a.name === undefined ? [] : Array.isArray(a.name) ? a.name : [a.name]);
const ENV = 'DEBIAN_FRONTEND=noninteractive';

export function planApt(a: AptArgs, f: AptFacts): Planned {
  const changes: Change[] = [];
  const steps: Step[] = [];
  if (a.update_cache && f.cacheAge > (a.cache_valid_time ?? 0)) {
    changes.push({ action: 'run', resource: 'apt cache', detail: `update (${Number.isFinite(f.cacheAge) ? `${f.cacheAge}s old` : 'never updated'})` });
    steps.push({ script: `${ENV} apt-get update -q` });
  }
  const state = a.state ?? 'present';
  const install: string[] = [];
  const remove: string[] = [];
  for (const n of names(a)) {
    const have = f.installed[n];
    if (state === 'absent') {
      if (have) {
        remove.push(n);
        changes.push({ action: '-', resource: `package ${n}`, detail: have });
      }
    } else if (!have) {
      install.push(n);
      changes.push({ action: '+', resource: `package ${n}` });
    } else if (state === 'latest' && f.candidate[n] && f.candidate[n] !== have) {
      install.push(n);
      changes.push({ action: '~', resource: `package ${n}`, detail: `${have} → ${f.candidate[n]}` });
    }
  }
  if (install.length) steps.push({ script: `${ENV} apt-get install -y -q --no-install-recommends ${install.map(shellQuote).join(' ')}` });
  if (remove.length) steps.push({ script: `${ENV} apt-get remove -y -q ${remove.map(shellQuote).join(' ')}` });
  return changes.length ? { changes, steps } : noChange({ packages: f.installed });
}

export function parseDpkg(out: string): Record<string, string> {
  const installed: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const [pkg, status, version] = line.split('\t');
    if (pkg && status === 'install ok installed') installed[pkg.split(':')[0]] = version;
  }
  return installed;
}

export default defineModule<AptArgs, AptFacts>({
  name: 'apt',
  batchFacts: true,
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      name: { anyOf: [{ type: 'string', pattern: '^[a-z0-9][a-z0-9+.-]+$' }, { type: 'array', items: { type: 'string', pattern: '^[a-z0-9][a-z0-9+.-]+$' } }] },
      state: { enum: ['present', 'absent', 'latest'] },
      update_cache: { type: 'boolean' },
      cache_valid_time: { type: 'integer', minimum: 0 },
    },
    anyOf: [{ required: ['name'] }, { required: ['update_cache'] }],
  },
  async facts(a, ctx) {
    const list = names(a).map(shellQuote).join(' ');
    const r = await ctx.exec(
      [
        list ? `dpkg-query -W -f='\${Package}\\t\${Status}\\t\${Version}\\n' ${list} 2>/dev/null` : 'true',
        'echo ---',
        `t=$(stat -c %Y /var/lib/apt/lists/partial 2>/dev/null || echo 0); echo $(( $(date +%s) - t ))`,
        'echo ---',
        a.state === 'latest' && list ? `apt-cache policy ${list} 2>/dev/null` : 'true',
      ].join('\n'),
    );
    const [dpkg, age, policy] = r.stdout.split('---\n');
    const candidate: Record<string, string> = {};
    let cur = '';
    for (const line of (policy ?? '').split('\n')) {
      const m = /^(\S+):$/.exec(line);
      if (m) cur = m[1];
      const c = /^\s+Candidate: (\S+)/.exec(line);
      if (c && cur) candidate[cur] = c[1];
    }
    const ageN = Number(age.trim());
    return { installed: parseDpkg(dpkg), candidate, cacheAge: ageN > 1e9 ? Infinity : ageN };
  },
  plan: planApt,
});
