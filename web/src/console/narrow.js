// Whether the console is on a phone-width screen: below NARROW_PX the side
// menu folds into a drawer and some screens lay out in one column. Kept in
// step with the @media (max-width: 767px) rules in console.css and the views.
import { onBeforeUnmount, onMounted, ref } from "vue";

export const NARROW_QUERY = "(max-width: 767px)";

const media = typeof window !== "undefined" && window.matchMedia ? window.matchMedia(NARROW_QUERY) : null;
const narrow = ref(media ? media.matches : false);
let listeners = 0;
const onChange = (e) => (narrow.value = e.matches);

// A reactive boolean; components share one media-query listener.
export function useNarrow() {
  onMounted(() => {
    if (media && listeners++ === 0) {
      narrow.value = media.matches;
      media.addEventListener("change", onChange);
    }
  });
  onBeforeUnmount(() => {
    if (media && --listeners === 0) media.removeEventListener("change", onChange);
  });
  return narrow;
}
