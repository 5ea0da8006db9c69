// Activity page themes (seed 000). Each kind has a default look; the activity's
// `theme` ({primary, accent, background, text, banner_url}, each optional, set
// by the operator and validated by the api: #rrggbb colours, an https:// or
// same-host banner) overrides it field by field.

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

const DARK_TEXT = "#1f1f1f";
const LIGHT_TEXT = "#ffffff";
const HEX = /^#[0-9a-f]{6}$/i;

function rgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

// WCAG relative luminance of a #rrggbb colour.
function luminance(hex) {
  const [r, g, b] = rgb(hex).map((c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

// White or near-black, whichever reads better on `hex`: an operator may pick a
// pale primary, and white text on it would vanish.
export function readableOn(hex) {
  return contrast(LIGHT_TEXT, hex) >= contrast(DARK_TEXT, hex) ? LIGHT_TEXT : DARK_TEXT;
}

// The primary as a text colour on `surface`: darkened until it reads (3:1,
// WCAG's floor for bold and large text), so a pale primary still labels things.
function ink(primary, surface) {
  let colour = primary;
  for (let share = 0.9; contrast(colour, surface) < 3 && share > 0; share -= 0.1) {
    colour = mix(primary, "#000000", share);
  }
  return colour;
}

function mix(a, b, share) {
  const [x, y] = [rgb(a), rgb(b)];
  const c = x.map((v, i) => Math.round(v * share + y[i] * (1 - share)));
  return "#" + c.map((v) => v.toString(16).padStart(2, "0")).join("");
}

// Only the fields the operator set (the api sends the rest as null).
function setFields(theme) {
  return Object.fromEntries(
    Object.entries(theme || {}).filter(([, v]) => v !== null && v !== undefined && v !== ""),
  );
}

export function themeFor(activity) {
  const own = setFields(activity?.theme);
  const theme = { ...BASE, ...(BY_KIND[activity?.kind] || {}), ...own };
  for (const key of ["primary", "accent", "background", "text"]) {
    if (!HEX.test(theme[key])) theme[key] = BASE[key];
  }
  // A background set without a text colour: pick the text that reads on it.
  if (own.background && !own.text && contrast(theme.text, theme.background) < 4.5) {
    theme.text = readableOn(theme.background);
    theme.muted = mix(theme.text, theme.background, 0.7);
  }
  // The wheel's sectors follow the operator's colours, not the kind's red.
  if (own.primary || own.accent) {
    const white = "#ffffff";
    theme.sector_colors = [
      mix(theme.primary, white, 0.55),
      mix(theme.accent, white, 0.6),
      mix(theme.primary, white, 0.3),
      mix(theme.accent, white, 0.3),
    ];
  }
  theme.primary_ink = ink(theme.primary, theme.surface);
  theme.on_primary = readableOn(theme.primary);
  theme.on_accent = readableOn(theme.accent);
  return theme;
}

// A banner URL inside url("..."): the api refuses quotes, backslashes and
// spaces in it already; escaping again keeps the page safe from an old value.
function cssUrl(url) {
  return `url("${String(url).replace(/["\\\n\r]/g, (c) => "\\" + c.charCodeAt(0).toString(16) + " ")}")`;
}

// The theme as CSS variables on the page's root element.
export function themeStyle(theme) {
  return {
    "--c-primary": theme.primary,
    "--c-primary-ink": theme.primary_ink,
    "--c-on-primary": theme.on_primary,
    "--c-accent": theme.accent,
    "--c-on-accent": theme.on_accent,
    "--c-bg": theme.background,
    "--c-surface": theme.surface,
    "--c-text": theme.text,
    "--c-muted": theme.muted,
    "--banner-image": theme.banner_url ? cssUrl(theme.banner_url) : "none",
  };
}
