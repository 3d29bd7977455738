// The per-principal limiter on its own (the routes' 429s are tested in gateway-credentials and
// gateway-rooms): windows, reset, and the bound on remembered keys.
import t from 'tap';
import { RateLimiter } from '../../src/gateway/rate-limit.ts';

t.test('max requests per window, then refused until the window ends', async (t) => {
  const l = new RateLimiter(3, 60_000);
  const t0 = 1_000_000;
  t.same(l.hit('alice', t0), { allowed: true, remaining: 2, resetIn: 60 });
  t.equal(l.hit('alice', t0 + 1).allowed, true);
  t.equal(l.hit('alice', t0 + 2).allowed, true);
  t.same(l.hit('alice', t0 + 30_000), { allowed: false, remaining: 0, resetIn: 30 }, 'the 4th in the window is refused, told when to retry');
  t.equal(l.hit('bob', t0 + 30_000).allowed, true, 'another key has its own window');
  t.equal(l.hit('alice', t0 + 59_999).allowed, false, 'still inside the window');
  t.same(l.hit('alice', t0 + 60_000), { allowed: true, remaining: 2, resetIn: 60 }, 'a new window starts when the old one ends');
});

t.test('remembers at most maxKeys keys: ended windows go first, then the oldest', async (t) => {
  const l = new RateLimiter(1, 1000, 3);
  l.hit('a', 0); l.hit('b', 500); l.hit('c', 600);
  l.hit('d', 1200); // a's window (ended at 1000) is dropped, b and c are kept
  t.equal(l.hit('b', 1300).allowed, false, 'b still counted');
  t.equal(l.hit('c', 1300).allowed, false, 'c still counted');
  t.equal(l.hit('d', 1300).allowed, false, 'd counted');
  l.hit('e', 1400); // b (1500), c (1600), d (2200) alive: the oldest, b, is forgotten
  t.equal(l.hit('b', 1450).allowed, true, 'the forgotten key starts afresh');
});
