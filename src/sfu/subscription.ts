// Subscription: one track forwarded to one subscriber (the "consumer"). Video starts only at a
// keyframe: until one has gone out, deltas are dropped and a keyframe is re-requested
// periodically, because a late joiner's PLI can be merged away by the publisher.
import type { ForwardPacket, OutboundTrack } from './engine.ts';
import type { Track } from './track.ts';

export const KEYFRAME_RETRY_MS = 500;

export class Subscription {
  private waitingForKeyframe: boolean;
  private retry?: NodeJS.Timeout;
  packetsForwarded = 0;

  constructor(
    readonly track: Track,
    readonly subscriberId: string,
    readonly outbound: OutboundTrack,
  ) {
    this.waitingForKeyframe = track.kind === 'video';
    outbound.onKeyframeRequest = () => track.requestKeyframe();
    if (this.waitingForKeyframe) {
      this.retry = setInterval(() => {
        if (this.outbound.ready()) this.track.requestKeyframe();
      }, KEYFRAME_RETRY_MS);
      this.retry.unref();
    }
  }

  get waiting(): boolean {
    return this.waitingForKeyframe;
  }

  forward(packet: ForwardPacket): void {
    if (this.waitingForKeyframe) {
      // A keyframe sent before the subscriber's transport is up would be lost: keep waiting.
      if (!packet.keyframeStart || !this.outbound.ready()) return;
      this.waitingForKeyframe = false;
      clearInterval(this.retry);
    }
    this.packetsForwarded++;
    this.outbound.send(packet);
  }

  close(): void {
    clearInterval(this.retry);
  }
}
