// The shopper endpoints this page uses, each sent with the shopper's token.
// The shared client (../shared/api.js) polls a 202 ticket until it is decided,
// so a draw or a claim here resolves to its outcome or throws its ApiError.
import { get, post, requestId } from "../shared/api.js";

// A referral is accepted on arrival (it binds the friend to the advocate) and
// again after every draw or claim (the friend's first decided draw, or first
// coupon claimed on a claim page or flash sale, is the conversion that rewards
// both). The api makes each acceptance idempotent, so posting it again is safe;
// a refusal (own link, referred by someone else) is not the shopper's problem
// and never gets in the way of the game.
async function acceptReferral(code, opts) {
  if (!code) return null;
  try {
    return await post("/v1/me/referrals", { code }, opts);
  } catch {
    return null;
  }
}

export function shopperApi(token, referral = null) {
  const headers = { Authorization: `Bearer ${token}` };
  const opts = { headers };
  const id = encodeURIComponent;
  return {
    activity: (activityId) => get(`/v1/activities/${id(activityId)}`, opts),
    acceptReferral: () => acceptReferral(referral, opts),
    // A fresh request id per press: a retry of the same press would reuse it.
    draw: async (activityId, rid = requestId()) => {
      const outcome = await post(`/v1/activities/${id(activityId)}/draws`, { request_id: rid }, opts);
      await acceptReferral(referral, opts);
      return outcome;
    },
    drawOutcome: (activityId, rid) => get(`/v1/activities/${id(activityId)}/draws/${id(rid)}`, opts),
    myPrizes: (activityId) => get(`/v1/activities/${id(activityId)}/prizes/mine`, opts),
    couponPage: (activityId) => get(`/v1/activities/${id(activityId)}/coupons`, opts),
    claim: async (templateId, rid = requestId()) => {
      const outcome = await post(`/v1/templates/${id(templateId)}/claims`, { request_id: rid }, opts);
      await acceptReferral(referral, opts);
      return outcome;
    },
    wallet: () => get("/v1/wallet", opts),
    points: () => get("/v1/me/points", opts),
    statement: (before) => get("/v1/me/points/statement", { ...opts, query: { before, limit: 50 } }),
  };
}
