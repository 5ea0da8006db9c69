// The server's clock as seen from this phone. A flash sale opens at a second
// decided by the actor's clock, and phones' clocks are often minutes off, so a
// countdown runs on Date.now() + offset, where offset comes from the
// server_time the api returns (taken at the midpoint of the request, which
// halves the error the round trip adds).
import { onBeforeUnmount, ref } from "vue";

const TICK_MS = 200;

export function serverOffset(serverTime, sentAt, receivedAt) {
  return serverTime - (sentAt + receivedAt) / 2;
}

// A reactive "now" on the server's clock, ticking while the component lives.
export function useServerNow() {
  const offset = ref(0);
  const now = ref(Date.now());
  const timer = setInterval(() => {
    now.value = Date.now() + offset.value;
  }, TICK_MS);
  onBeforeUnmount(() => clearInterval(timer));
  // fetcher: a function returning a promise of a body with server_time.
  async function sync(fetcher) {
    const sentAt = Date.now();
    const body = await fetcher();
    const receivedAt = Date.now();
    if (body && typeof body.server_time === "number") {
      offset.value = serverOffset(body.server_time, sentAt, receivedAt);
      now.value = Date.now() + offset.value;
    }
    return body;
  }
  return { now, offset, sync };
}
