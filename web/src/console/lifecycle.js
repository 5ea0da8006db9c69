// The moves the API accepts from each state (domain/lifecycle.py TRANSITIONS):
// the console offers only these, so an operator never meets a 409 by clicking.
export const TRANSITIONS = {
  draft: ["scheduled"],
  scheduled: ["running", "ended"],
  running: ["paused", "ended"],
  paused: ["running", "ended"],
  ended: [],
};

export const STATUS_TAG = {
  draft: "info",
  scheduled: "warning",
  running: "success",
  paused: "warning",
  ended: "danger",
};

// The clock moves a scheduled activity to running (and a live one to ended)
// before anyone records it; the API then accepts the move to the state the clock
// reached, which "records" it. So an activity scheduled without a start time
// shows Start next to Pause and End.
export function allowedMoves(view) {
  const current = view.effective_status;
  const moves = [...TRANSITIONS[current]];
  if (current !== view.activity.status && !moves.includes(current)) moves.unshift(current);
  return moves;
}

// The label of a move: back to running from paused is "resume", otherwise "start".
export function moveLabel(view, to) {
  if (to === "running" && view.effective_status === "paused") return "actions.resume";
  return "actions." + to;
}

// A live activity only changes name, end and institution (domain/lifecycle.py LIVE_EDITABLE).
export const isLive = (status) => status === "running" || status === "paused";
export const PAGE_KINDS = ["claim", "flash_sale"];

// A coupon template's verbs and the state each is allowed from
// (domain/template_lifecycle.py act: start only a draft, resume only a paused one).
const TEMPLATE_VERBS = {
  draft: ["start", "end"],
  running: ["pause", "end"],
  paused: ["resume", "end"],
  ended: [],
};
export const templateVerbs = (status) => TEMPLATE_VERBS[status] || [];
export const TEMPLATE_STATUS_TAG = { draft: "info", running: "success", paused: "warning", ended: "danger" };
// Once shoppers may hold its coupons only these change (domain/claims.py LIVE_EDITABLE).
export const TEMPLATE_LIVE_EDITABLE = ["name", "description", "claim_closes_at", "institution_id"];
// A code batch's and a distribution's job states that no longer move.
export const JOB_FINISHED = ["done", "failed", "cancelled"];
