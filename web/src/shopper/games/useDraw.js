// One press of a game's button: the draw on the road, its outcome or its
// refusal, and the busy flag that keeps a second press from starting a second
// draw while the first is still spinning.
import { inject, ref } from "vue";

export function useDraw() {
  const api = inject("api");
  const activityId = inject("activityId");
  const busy = ref(false);
  const error = ref(null);

  // Resolves to the outcome, or null when refused (error is then set).
  async function draw() {
    error.value = null;
    try {
      return await api.draw(activityId);
    } catch (e) {
      error.value = e;
      return null;
    }
  }
  return { busy, error, draw };
}

// Resolves when a CSS transition on `element` ends, or after `fallbackMs`
// (a transition that never runs, e.g. an element hidden meanwhile, must not
// leave the button disabled for ever).
export function transitionDone(element, fallbackMs) {
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      element?.removeEventListener("transitionend", onEnd);
      resolve();
    };
    const onEnd = (event) => {
      if (event.target === element) finish();
    };
    element?.addEventListener("transitionend", onEnd);
    setTimeout(finish, fallbackMs);
  });
}

export const reducedMotion = () =>
  window.matchMedia?.("(prefers-reduced-motion: reduce)").matches ?? false;
