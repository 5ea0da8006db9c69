import ElementPlus from "element-plus";
import "element-plus/dist/index.css";
import { createApp } from "vue";
import App from "./App.vue";
import { i18n } from "./i18n.js";
import "./console.css";

document.documentElement.lang = i18n.global.locale.value;
createApp(App).use(i18n).use(ElementPlus).mount("#app");
