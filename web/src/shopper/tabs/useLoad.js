// A tab's read: the data, or the error to show with a retry.
import { onMounted, ref } from "vue";

export function useLoad(fetcher) {
  const data = ref(null);
  const error = ref(null);
  const loading = ref(false);
  async function load() {
    loading.value = true;
    try {
      data.value = await fetcher();
      error.value = null;
    } catch (e) {
      error.value = e;
    } finally {
      loading.value = false;
    }
  }
  onMounted(load);
  return { data, error, loading, load };
}
