// Refresh a screen's unfinished jobs while it is open: every `everyMs`, call
// `tick` (which reloads what is still moving); stopped with the component.
import { onBeforeUnmount, onMounted } from "vue";

export function usePolling(tick, everyMs) {
  let timer = null;
  let busy = false;
  const run = async () => {
    if (busy) return; // a slow answer is not overtaken by the next tick
    busy = true;
    try {
      await tick();
    } finally {
      busy = false;
    }
  };
  onMounted(() => (timer = setInterval(run, everyMs)));
  onBeforeUnmount(() => clearInterval(timer));
}
