// The console's strings in English and Simplified Chinese (the seeds' users are
// Chinese banks and shops as well as overseas merchants). The language follows
// the browser until the operator picks one; the pick is remembered.
import { createI18n } from "vue-i18n";

const en = {
  app: { title: "Carnival console", language: "Language", signOut: "Sign out", tenant: "Tenant", role: "Role" },
  roles: { admin: "admin", operator: "operator", analyst: "analyst (read only)" },
  menu: { activities: "Activities", templates: "Coupon templates", audit: "Audit log", points: "Points rules" },
  signIn: {
    title: "Sign in to the operator console",
    key: "Staff API key",
    keyHint: "Paste the X-Api-Key your administrator gave you. It is kept in this tab only.",
    submit: "Sign in",
    ended: "Your session ended: {reason}",
  },
  common: {
    save: "Save", cancel: "Cancel", create: "Create", edit: "Edit", back: "Back", refresh: "Refresh",
    loading: "Loading…", none: "None", unlimited: "unlimited", open: "open", actions: "Actions",
    confirm: "Confirm", id: "ID", name: "Name", kind: "Kind", status: "Status", yes: "Yes", no: "No",
  },
  kinds: { wheel: "Big wheel", grid: "Nine-grid", red_envelope: "Red envelope", claim: "Claim centre", flash_sale: "Flash sale" },
  status: { draft: "Draft", scheduled: "Scheduled", running: "Running", paused: "Paused", ended: "Ended" },
  actions: {
    scheduled: "Schedule", running: "Start", resume: "Resume", paused: "Pause", ended: "End",
    live: "Live", done: "Activity {name} is now {status}",
    confirmEnd: "End “{name}”? Shoppers can no longer take part and an ended activity cannot be restarted or edited.",
    confirmEndTitle: "End the activity",
  },
  activities: {
    title: "Activities", new: "New activity", empty: "No activity yet.", window: "Window",
    stockLeft: "Stock left", clockStatus: "set to {status}; the clock moved it on",
    readOnly: "Your role reads only: actions are hidden.",
  },
  form: {
    newTitle: "New activity", editTitle: "Edit {name}", basics: "Basics", idHint: "generated when empty",
    window: "Time window", start: "Starts", end: "Ends", timezone: "Time zone",
    timezoneHint: "Days and months of the limits follow this calendar; the tenant's when empty",
    institution: "Institution", institutionHint: "the branch whose scoped analyst keys see it",
    limits: "Limits", perUserTotal: "Per user, in total", perUserDaily: "Per user, per day",
    perUserMonthly: "Per user, per month", maxDraws: "All draws", pointsCost: "Points per draw",
    zeroIsNoLimit: "0 = no limit", envelopes: "Red envelopes", budget: "Budget (cents)",
    count: "Envelopes", minCents: "Smallest envelope (cents)",
    liveNote: "This activity is {status}: only its name, end and institution can change (add stock from the live page).",
    saved: "Saved", created: "Created {name}", problems: "The API refused the activity:",
    kindLocked: "The kind is fixed once created.",
  },
  pool: {
    title: "Prize pool", add: "Add prize", remove: "Remove", weight: "Weight", stock: "Stock",
    probability: "Probability", template: "Coupon template", points: "Points", unlock: "Unlocks after draws",
    fallback: "Fallback prize", fallbackHint: "Won when the drawn prize is out of stock or locked; unlimited stock.",
    noWeights: "Give at least one prize a positive weight to see the probabilities.",
    gridCells: "A nine-grid has exactly 8 prize cells ({count} now).",
    wheelMin: "A wheel needs at least 2 prizes, one of them the fallback.",
    chart: "Probabilities as configured", row: "Prize {n}",
    prizeKinds: { coupon: "Coupon", points: "Points", item: "Item", thanks: "Thanks (no prize)" },
  },
  live: {
    title: "Live: {name}", updated: "Last updated {time}", never: "not yet", draws: "Draws",
    participants: "Participants", wins: "Wins", rejected: "Rejected", amountWon: "Amount won",
    lastEvent: "Last event {time}", perMinute: "Draws and wins per minute (last hour)",
    funnel: "Funnel", prizes: "Wins per prize against stock", awarded: "Awarded", left: "Left",
    funnelSteps: { participants: "Participants", draws: "Draws", wins: "Wins", coupons_won: "Coupons won", coupons_redeemed: "Coupons redeemed" },
    refreshEvery: "Refreshes every second", addStock: "Add stock", addStockOf: "Add stock to {name}",
    addStockHow: "How many more {name} may be won?", stockAdded: "{name}: stock {stock}", wholeNumber: "a whole number above 0",
  },
  templates: {
    title: "Coupon templates", new: "New template", empty: "No coupon template yet.",
    stockLeft: "Stock left", issued: "Issued", amount: "Amount off (cents)", threshold: "Spend at least (cents)",
    percent: "Percent off", cap: "Cap (cents)", validDays: "Valid days after claim", stock: "Stock (empty: unlimited)",
    perUser: "Per user (0: no limit)", created: "Created template {name}",
    kinds: { fixed: "Amount off", threshold: "Spend X get Y off", percent: "Percent off", free_order: "Free order", flash_price: "Flash price" },
  },
  audit: { title: "Audit log", at: "When", who: "Who", action: "Action", target: "Target", empty: "Nothing changed yet." },
  points: { title: "Points rules", saved: "Rules saved" },
};

const zh = {
  app: { title: "Carnival 运营后台", language: "语言", signOut: "退出登录", tenant: "租户", role: "角色" },
  roles: { admin: "管理员", operator: "运营", analyst: "分析员（只读）" },
  menu: { activities: "活动管理", templates: "优惠券模板", audit: "操作日志", points: "积分规则" },
  signIn: {
    title: "登录运营后台",
    key: "员工 API 密钥",
    keyHint: "粘贴管理员发给您的 X-Api-Key，仅保存在当前标签页。",
    submit: "登录",
    ended: "会话已结束：{reason}",
  },
  common: {
    save: "保存", cancel: "取消", create: "创建", edit: "编辑", back: "返回", refresh: "刷新",
    loading: "加载中…", none: "无", unlimited: "不限", open: "不限时", actions: "操作",
    confirm: "确认", id: "编号", name: "名称", kind: "类型", status: "状态", yes: "是", no: "否",
  },
  kinds: { wheel: "大转盘", grid: "九宫格", red_envelope: "拆红包", claim: "领券中心", flash_sale: "限时秒杀" },
  status: { draft: "草稿", scheduled: "已排期", running: "进行中", paused: "已暂停", ended: "已结束" },
  actions: {
    scheduled: "排期", running: "开始", resume: "恢复", paused: "暂停", ended: "结束",
    live: "实时", done: "活动 {name} 当前状态：{status}",
    confirmEnd: "确定结束“{name}”？结束后用户无法参与，活动不能重新开始或编辑。",
    confirmEndTitle: "结束活动",
  },
  activities: {
    title: "活动管理", new: "新建活动", empty: "暂无活动。", window: "活动时间",
    stockLeft: "剩余库存", clockStatus: "设置为{status}，已按时间自动流转",
    readOnly: "您的角色为只读，操作按钮已隐藏。",
  },
  form: {
    newTitle: "新建活动", editTitle: "编辑 {name}", basics: "基本信息", idHint: "留空自动生成",
    window: "活动时间", start: "开始", end: "结束", timezone: "时区",
    timezoneHint: "每日、每月限制按此时区计算；留空使用租户时区",
    institution: "机构", institutionHint: "该机构的分析员密钥可见此活动",
    limits: "参与限制", perUserTotal: "每人总次数", perUserDaily: "每人每日次数",
    perUserMonthly: "每人每月次数", maxDraws: "活动总抽奖次数", pointsCost: "每次消耗积分",
    zeroIsNoLimit: "0 表示不限", envelopes: "红包", budget: "总预算（分）",
    count: "红包个数", minCents: "最小金额（分）",
    liveNote: "活动{status}：只能修改名称、结束时间和机构（库存请在实时页追加）。",
    saved: "已保存", created: "已创建 {name}", problems: "接口拒绝了该活动：",
    kindLocked: "创建后类型不可修改。",
  },
  pool: {
    title: "奖品池", add: "添加奖品", remove: "删除", weight: "权重", stock: "库存",
    probability: "中奖概率", template: "优惠券模板", points: "积分", unlock: "抽奖满几次解锁",
    fallback: "兜底奖品", fallbackHint: "抽中的奖品无库存或未解锁时发放；库存不限。",
    noWeights: "至少给一个奖品设置正权重才能计算概率。",
    gridCells: "九宫格需要恰好 8 个奖品格（当前 {count} 个）。",
    wheelMin: "大转盘至少需要 2 个奖品，其中一个为兜底奖品。",
    chart: "配置的中奖概率", row: "奖品 {n}",
    prizeKinds: { coupon: "优惠券", points: "积分", item: "实物", thanks: "谢谢参与" },
  },
  live: {
    title: "实时数据：{name}", updated: "更新于 {time}", never: "尚未更新", draws: "抽奖次数",
    participants: "参与人数", wins: "中奖次数", rejected: "被拒次数", amountWon: "发放金额",
    lastEvent: "最近事件 {time}", perMinute: "每分钟抽奖与中奖（最近一小时）",
    funnel: "转化漏斗", prizes: "各奖品中奖与库存", awarded: "已发放", left: "剩余",
    funnelSteps: { participants: "参与人数", draws: "抽奖次数", wins: "中奖次数", coupons_won: "获得优惠券", coupons_redeemed: "核销优惠券" },
    refreshEvery: "每秒刷新", addStock: "追加库存", addStockOf: "为 {name} 追加库存",
    addStockHow: "{name} 再追加多少库存？", stockAdded: "{name}：库存 {stock}", wholeNumber: "大于 0 的整数",
  },
  templates: {
    title: "优惠券模板", new: "新建模板", empty: "暂无优惠券模板。",
    stockLeft: "剩余库存", issued: "已发放", amount: "减免金额（分）", threshold: "满额门槛（分）",
    percent: "折扣百分比", cap: "封顶（分）", validDays: "领取后有效天数", stock: "库存（留空不限）",
    perUser: "每人限领（0 不限）", created: "已创建模板 {name}",
    kinds: { fixed: "立减券", threshold: "满减券", percent: "折扣券", free_order: "免单券", flash_price: "秒杀价" },
  },
  audit: { title: "操作日志", at: "时间", who: "操作人", action: "操作", target: "对象", empty: "暂无变更。" },
  points: { title: "积分规则", saved: "规则已保存" },
};

const STORAGE_KEY = "carnival.console.locale";
export const LOCALES = [
  { value: "en", label: "English" },
  { value: "zh-CN", label: "简体中文" },
];

function initialLocale() {
  const kept = localStorage.getItem(STORAGE_KEY);
  if (kept && LOCALES.some((l) => l.value === kept)) return kept;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

export const i18n = createI18n({
  legacy: false,
  locale: initialLocale(),
  fallbackLocale: "en",
  messages: { en, "zh-CN": zh },
});

export function setLocale(locale) {
  i18n.global.locale.value = locale;
  localStorage.setItem(STORAGE_KEY, locale);
  document.documentElement.lang = locale;
}
