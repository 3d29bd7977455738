// Relay-only: the SFU accepts ICE candidates only whose address is one of the namespace's TURN
// relay addresses. Candidates arrive two ways: trickled (`ice-candidate`) and inside SDP
// (`a=candidate:` lines); both are filtered here. ICE checks from other sources are filtered in
// the engine (see EngineOptions.isAllowedRemote).
export class RelayPolicy {
  private readonly allowed: Set<string>;
  constructor(relayIps: string[]) {
    this.allowed = new Set(relayIps);
  }

  isAllowed(ip: string): boolean {
    return this.allowed.has(ip);
  }

  /** Address of an `a=candidate`/`candidate:` attribute, or undefined if it cannot be parsed. */
  static candidateAddress(candidate: string): string | undefined {
    const fields = candidate.replace(/^a=/, '').replace(/^candidate:/, '').trim().split(/\s+/);
    // foundation component transport priority address port "typ" type ...
    return fields.length >= 8 && fields[6] === 'typ' ? fields[4] : undefined;
  }

  allowsCandidate(candidate: string): boolean {
    const ip = RelayPolicy.candidateAddress(candidate);
    return ip !== undefined && this.isAllowed(ip);
  }

  /** Remove disallowed `a=candidate` lines; returns the SDP and how many were dropped. */
  filterSdp(sdp: string): { sdp: string; dropped: number } {
    let dropped = 0;
    const lines = sdp.split(/\r\n|\n/).filter((line) => {
      if (!line.startsWith('a=candidate:')) return true;
      if (this.allowsCandidate(line)) return true;
      dropped++;
      return false;
    });
    return { sdp: lines.join('\r\n'), dropped };
  }
}
