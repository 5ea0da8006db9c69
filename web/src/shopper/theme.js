// Activity page themes (seed 000). The activity's config has no theme fields
// yet, so each kind gets a default look; a `theme` object on the activity view
// ({primary, accent, background, text, banner_url, sector_colors}) would
// override it field by field once the schema carries one.

const BASE = {
  primary: "#e8453c",
  accent: "#ffd36b",
  background: "#fff6ec",
  surface: "#ffffff",
  text: "#2b1b17",
  muted: "#7a6a66",
  banner_url: "",
  sector_colors: ["#ff6b5a", "#ffe3a3", "#ff9f43", "#fff3d6"],
};

const BY_KIND = {
  wheel: {},
  grid: { primary: "#7b3fe4", accent: "#ffd36b", background: "#f5f0ff" },
  red_envelope: { primary: "#d62d20", accent: "#ffcf5c", background: "#fff0ec" },
  claim: { primary: "#ff7a1a", accent: "#ffe1c2", background: "#fff7f0" },
  flash_sale: { primary: "#e3192b", accent: "#ffd400", background: "#fff4f4" },
};

export function themeFor(activity) {
  const theme = { ...BASE, ...(BY_KIND[activity?.kind] || {}), ...(activity?.theme || {}) };
  return theme;
}

// The theme as CSS variables on the page's root element.
export function themeStyle(theme) {
  return {
    "--c-primary": theme.primary,
    "--c-accent": theme.accent,
    "--c-bg": theme.background,
    "--c-surface": theme.surface,
    "--c-text": theme.text,
    "--c-muted": theme.muted,
    "--banner-image": theme.banner_url ? `url("${theme.banner_url}")` : "none",
  };
}
