// A hash router small enough to read at once: the console has a handful of
// screens, and a hash survives reloads without the api knowing the routes.
import { reactive } from "vue";

const ROUTES = [
  { name: "activities", pattern: /^\/activities\/?$/ },
  { name: "activity-new", pattern: /^\/activities\/new$/ },
  { name: "activity-edit", pattern: /^\/activities\/([^/]+)\/edit$/ },
  { name: "activity-live", pattern: /^\/activities\/([^/]+)\/live$/ },
  { name: "templates", pattern: /^\/templates\/?$/ },
  { name: "template", pattern: /^\/templates\/([^/]+)$/ },
  { name: "code-batches", pattern: /^\/code-batches\/?$/ },
  { name: "distributions", pattern: /^\/distributions\/?$/ },
  { name: "partners", pattern: /^\/partners\/?$/ },
  { name: "partner", pattern: /^\/partners\/([^/]+)$/ },
  { name: "deliveries", pattern: /^\/partners\/([^/]+)\/webhooks\/([^/]+)$/ },
  { name: "audit", pattern: /^\/audit\/?$/ },
  { name: "points", pattern: /^\/points\/?$/ },
];

// id: the first id in the path; sub: the second (a partner's webhook).
export const route = reactive({ name: "activities", id: null, sub: null, path: "/activities" });

function read() {
  const path = decodeURIComponent(location.hash.replace(/^#/, "")) || "/activities";
  for (const { name, pattern } of ROUTES) {
    const match = path.match(pattern);
    if (match) {
      Object.assign(route, { name, id: match[1] || null, sub: match[2] || null, path });
      return;
    }
  }
  Object.assign(route, { name: "activities", id: null, sub: null, path: "/activities" });
}

export function go(path) {
  location.hash = "#" + path;
}

window.addEventListener("hashchange", read);
read();
