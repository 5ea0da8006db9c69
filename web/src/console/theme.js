// An activity page's theme (seed 000): four colours and a banner. The form
// holds every field as a string; the API gets only what the operator set, and
// no `theme` at all while every field is empty (an edit that empties every
// field sends null: back to the kind's default look).
export const THEME_COLOURS = ["primary", "accent", "background", "text"];
export const HEX = /^#[0-9a-fA-F]{6}$/;

export function themeFields(theme) {
  const fields = { banner_url: theme?.banner_url || "" };
  for (const name of THEME_COLOURS) fields[name] = theme?.[name] || "";
  return fields;
}

// A field left out keeps the kind's default look (domain/activity.py Theme);
// so does an empty banner, which the API would refuse as an empty URL.
export function themeBody(fields) {
  const out = {};
  for (const name of THEME_COLOURS) if (fields[name].trim()) out[name] = fields[name].trim().toLowerCase();
  if (fields.banner_url.trim()) out.banner_url = fields.banner_url.trim();
  return Object.keys(out).length ? out : null;
}

// A hint before the API's verdict: empty, an https URL or a path from the site's root.
export const bannerOk = (url) => url === "" || url.startsWith("/") || /^https:\/\/[^\s]+$/.test(url);
