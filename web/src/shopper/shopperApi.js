// The shopper endpoints this page uses, each sent with the shopper's token.
// The shared client (../shared/api.js) polls a 202 ticket until it is decided,
// so a draw or a claim here resolves to its outcome or throws its ApiError.
import { get, post, requestId } from "../shared/api.js";

export function shopperApi(token) {
  const headers = { Authorization: `Bearer ${token}` };
  const opts = { headers };
  const id = encodeURIComponent;
  return {
    activity: (activityId) => get(`/v1/activities/${id(activityId)}`, opts),
    // A fresh request id per press: a retry of the same press would reuse it.
    draw: (activityId, rid = requestId()) =>
      post(`/v1/activities/${id(activityId)}/draws`, { request_id: rid }, opts),
    drawOutcome: (activityId, rid) => get(`/v1/activities/${id(activityId)}/draws/${id(rid)}`, opts),
    myPrizes: (activityId) => get(`/v1/activities/${id(activityId)}/prizes/mine`, opts),
    couponPage: (activityId) => get(`/v1/activities/${id(activityId)}/coupons`, opts),
    claim: (templateId, rid = requestId()) =>
      post(`/v1/templates/${id(templateId)}/claims`, { request_id: rid }, opts),
    wallet: () => get("/v1/wallet", opts),
    points: () => get("/v1/me/points", opts),
    statement: (before) => get("/v1/me/points/statement", { ...opts, query: { before, limit: 50 } }),
  };
}
