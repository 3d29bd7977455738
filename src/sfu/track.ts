// Track: one media stream a peer publishes (the "producer"). It fans every packet out to its
// subscriptions and rate-limits keyframe requests toward the publisher, because Chrome merges
// bursts of PLIs anyway and each one costs the publisher a large frame.
import type { ForwardPacket, InboundTrack, MediaKind } from './engine.ts';
import type { Metrics } from './metrics.ts';
import type { Subscription } from './subscription.ts';

export const KEYFRAME_REQUEST_MIN_INTERVAL_MS = 300;

export class Track {
  readonly subscriptions = new Set<Subscription>();
  private lastKeyframeRequest = 0;

  constructor(
    readonly id: string,
    readonly publisherId: string,
    private readonly inbound: InboundTrack,
    private readonly metrics: Metrics,
  ) {
    inbound.onPacket = (packet) => this.forward(packet);
  }

  get kind(): MediaKind {
    return this.inbound.kind;
  }

  private forward(packet: ForwardPacket): void {
    for (const subscription of this.subscriptions) subscription.forward(packet);
  }

  requestKeyframe(): void {
    if (this.kind !== 'video') return;
    const now = Date.now();
    if (now - this.lastKeyframeRequest < KEYFRAME_REQUEST_MIN_INTERVAL_MS) return;
    this.lastKeyframeRequest = now;
    this.metrics.keyframeRequests++;
    this.inbound.requestKeyframe();
  }

  close(): void {
    for (const subscription of this.subscriptions) subscription.close();
    this.subscriptions.clear();
    this.inbound.onPacket = () => {};
  }
}
