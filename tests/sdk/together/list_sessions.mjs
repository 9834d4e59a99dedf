// List Together Code Interpreter sessions with the official npm SDK (together-ai 0.52.0).
//
// Run by tests/sdk/test_sdk_contract.py with node, from the `npm ci` of this folder:
//   node list_sessions.mjs BASE_URL
// (the key in SDK_CONTRACT_KEY). The SDK asks for `${baseURL}/tci/sessions` and its default
// baseURL is https://api.together.ai/v1, so the simulator's address is given with /v1. The
// list has no paging: one call returns it. Prints JSON: {"sessions": [...], "errors": [...]},
// each session with the fields the exporter reads (times as unix seconds).
import Together from "together-ai";

const [baseURL] = process.argv.slice(2);
const client = new Together({
  apiKey: process.env.SDK_CONTRACT_KEY,
  baseURL: `${baseURL}/v1`,
  maxRetries: 0, // one request
  timeout: 10000,
});
const answer = await client.codeInterpreter.sessions.list();
const seconds = (text) => Date.parse(text) / 1000;
const rows = (answer.data?.sessions ?? []).map((session) => ({
  id: session.id,
  status: "active", // the type has no status: every listed session is live
  created: seconds(session.started_at),
  deadline: seconds(session.expires_at),
  last_activity: seconds(session.last_execute_at),
  executions: session.execute_count,
}));
console.log(JSON.stringify({ sessions: rows, errors: answer.errors ?? [] }));
