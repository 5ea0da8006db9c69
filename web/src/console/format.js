// Dates and numbers in the operator's language.
import { i18n } from "./i18n.js";

export function dateTime(ms, timeZone) {
  if (ms === null || ms === undefined) return "";
  const options = { dateStyle: "medium", timeStyle: "short" };
  try {
    return new Intl.DateTimeFormat(i18n.global.locale.value, { ...options, timeZone }).format(new Date(ms));
  } catch {
    return new Intl.DateTimeFormat(i18n.global.locale.value, options).format(new Date(ms));
  }
}

export const clock = (date) =>
  new Intl.DateTimeFormat(i18n.global.locale.value, { timeStyle: "medium" }).format(date);

export const count = (n) => new Intl.NumberFormat(i18n.global.locale.value).format(n ?? 0);

// weight / total as a percent with two decimals: what the prize editor shows and
// what the test checks (the pool draws with exactly these odds).
export function percent(weight, total) {
  if (!total) return "—";
  return ((100 * weight) / total).toFixed(2) + "%";
}
