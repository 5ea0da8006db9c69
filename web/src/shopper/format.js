// Money and dates as a shopper reads them, in the page's language.
import { i18n } from "./i18n.js";

// All money in the api is integer cents. The currency is the merchant's and is
// not in the activity's config, so amounts are shown without a symbol.
export function money(cents) {
  if (cents === null || cents === undefined) return "";
  return new Intl.NumberFormat(i18n.global.locale.value, {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  }).format(cents / 100);
}

export function dateTime(ms) {
  if (!ms) return "";
  return new Intl.DateTimeFormat(i18n.global.locale.value, {
    dateStyle: "medium",
    timeStyle: "short",
  }).format(new Date(ms));
}

export function integer(n) {
  return new Intl.NumberFormat(i18n.global.locale.value).format(n ?? 0);
}

// An opening time short enough for a button: the time alone when it is today.
export function shortTime(ms) {
  if (!ms) return "";
  const at = new Date(ms);
  const today = new Date().toDateString() === at.toDateString();
  return new Intl.DateTimeFormat(i18n.global.locale.value, {
    ...(today ? {} : { month: "short", day: "numeric" }),
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).format(at);
}

// The big figure on a coupon: its amount off, or its percentage (a percent
// coupon's face value is its cap, which is not what it takes off).
export function couponFace(kind, faceValueCents, percent) {
  if (kind === "percent") return percent ? `${percent}%` : "%";
  if (kind === "free_order") return i18n.global.t("wallet.freeOrder");
  if (kind === "flash_price") return "⚡";
  return faceValueCents ? money(faceValueCents) : "🎟️";
}
