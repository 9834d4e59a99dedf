// List Trigger.dev sessions with the official SDK (@trigger.dev/sdk 4.8.3), every page.
//
// Run by tests/sdk/test_sdk_contract.py with node, from the `npm ci` of this folder:
//   node list_sessions.mjs BASE_URL PAGE_SIZE ENDED_PERIOD
// (the key in SDK_CONTRACT_KEY). The list has no status field, so each status is its own
// filtered query, as the exporter makes them: ACTIVE always, CLOSED and EXPIRED over
// ENDED_PERIOD (e.g. "1d"). Each is paged with the SDK's own CursorPage (getNextPage while
// hasNextPage). Prints JSON: {"sessions": [...], "pages": n}.
import { configure, sessions } from "@trigger.dev/sdk";

const [baseURL, pageSize, endedPeriod] = process.argv.slice(2);
configure({
  baseURL,
  accessToken: process.env.SDK_CONTRACT_KEY,
  requestOptions: { retry: { maxAttempts: 1 } }, // one request per page
});

const rows = [];
let pages = 0;
for (const [status, extra] of [
  ["ACTIVE", {}],
  ["CLOSED", { period: endedPeriod }],
  ["EXPIRED", { period: endedPeriod }],
]) {
  let page = await sessions.list({ status, limit: Number(pageSize), ...extra });
  for (;;) {
    pages += 1;
    for (const session of page.data) {
      rows.push({
        id: session.id,
        status,
        created: session.createdAt.getTime() / 1000,
        deadline: session.expiresAt === null ? null : session.expiresAt.getTime() / 1000,
        last_activity: session.updatedAt.getTime() / 1000,
        kind: session.type,
      });
    }
    if (!page.hasNextPage()) break;
    page = await page.getNextPage();
  }
}
console.log(JSON.stringify({ sessions: rows, pages }));
