// Two pages, one build: the operator console and the shopper pages. The api
// serves dist/ (api/web.py): HTML at /console and /p/{tenant}/{activity}, the
// hashed assets under /web/.
import { fileURLToPath } from "node:url";
import vue from "@vitejs/plugin-vue";
import { defineConfig } from "vite";

export default defineConfig({
  base: "/web/",
  plugins: [vue()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Element Plus and ECharts are large by nature; the console loads once per session.
    chunkSizeWarningLimit: 2048,
    rollupOptions: {
      input: {
        console: fileURLToPath(new URL("./console.html", import.meta.url)),
        shopper: fileURLToPath(new URL("./shopper.html", import.meta.url)),
      },
    },
  },
});
