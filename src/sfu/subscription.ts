// Subscription: one track forwarded to one subscriber — the engine's consumer, named in the room.
import type { Consumer } from './engine.ts';
import type { Track } from './track.ts';

export class Subscription {
  constructor(
    readonly track: Track,
    readonly subscriberId: string,
    readonly consumer: Consumer,
  ) {}
}
