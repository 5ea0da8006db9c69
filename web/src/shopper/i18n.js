// vue-i18n for the shopper pages: the shopper's choice (kept in localStorage),
// else the browser's language, else English.
import { createI18n } from "vue-i18n";
import { LOCALES, messages } from "./messages.js";

const CHOICE_KEY = "carnival.shopper.locale";

function initialLocale() {
  try {
    const chosen = window.localStorage.getItem(CHOICE_KEY);
    if (chosen && messages[chosen]) return chosen;
  } catch {
    // storage blocked: fall through to the browser's language
  }
  const wanted = navigator.languages?.length ? navigator.languages : [navigator.language || "en"];
  return wanted.some((l) => l.toLowerCase().startsWith("zh")) ? "zh-CN" : "en";
}

export const i18n = createI18n({
  legacy: false,
  locale: initialLocale(),
  fallbackLocale: "en",
  messages,
});

export function setLocale(code) {
  i18n.global.locale.value = code;
  document.documentElement.lang = code;
  try {
    window.localStorage.setItem(CHOICE_KEY, code);
  } catch {
    // not remembered across visits; the switch still works for this page
  }
}

export { LOCALES };

// What a shopper reads for a failed call: the table's message for its code (by
// context first: a claim's sold_out is not a red envelope's), else the api's own
// message, so a failure is never blank.
export function humanError(error, context) {
  const { t, te } = i18n.global;
  const code = error?.code || "internal_error";
  if (context && te(`errorsIn.${context}.${code}`, "en")) return t(`errorsIn.${context}.${code}`);
  if (te(`errors.${code}`, "en")) return t(`errors.${code}`);
  return error?.message || t("errors.internal_error");
}
