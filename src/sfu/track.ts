// Track: one media stream a peer publishes — the engine's producer, named in the room, and the
// subscriptions that forward it. The engine does the forwarding; the track only knows who gets it.
import type { MediaKind, Producer } from './engine.ts';
import type { Subscription } from './subscription.ts';

export class Track {
  readonly subscriptions = new Set<Subscription>();

  constructor(
    readonly id: string,
    readonly publisherId: string,
    readonly producer: Producer,
  ) {}

  get kind(): MediaKind {
    return this.producer.kind;
  }

  close(): void {
    this.subscriptions.clear();
  }
}
