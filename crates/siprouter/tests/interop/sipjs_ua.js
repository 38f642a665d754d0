// Two SIP.js user agents (alice and bob) against siprouter over WebSocket,
// for crates/siprouter/tests/interop_jssip.rs. SIP.js is the other
// browser SIP library; in Node.js its WebSocket transport runs over the
// `ws` package's WebSocket, which has the browser's API.
//
// Usage: node sipjs_ua.js <ws-url> <domain>
// Same protocol as jssip_ua.js: "EVENT <name> <detail>" lines, a line on
// stdin awaited after "EVENT READY", exit 0 when all went through.
'use strict';

global.WebSocket = require('ws');
const { UserAgent, Registerer, RegistererState, Messager } = require('sip.js');

const [url, domain] = process.argv.slice(2);
const say = (name, detail = '') => console.log(`EVENT ${name} ${detail}`.trim());
const fail = (why) => {
  say('FAIL', why);
  process.exit(1);
};
setTimeout(() => fail('timeout'), 15000);

function ua(user, onMessage) {
  return new UserAgent({
    uri: UserAgent.makeURI(`sip:${user}@${domain}`),
    authorizationUsername: user,
    authorizationPassword: `${user}-secret`,
    transportOptions: { server: url, keepAliveInterval: 0 },
    logLevel: 'error',
    delegate: { onMessage },
  });
}

const alice = ua('alice', () => {});
const bob = ua('bob', (message) => {
  say('BOB_GOT_MESSAGE', message.request.body);
  message.accept();
});

async function register(u, name) {
  await u.start();
  const r = new Registerer(u, { expires: 300 });
  await new Promise((resolve) => {
    r.stateChange.addListener((s) => {
      if (s === RegistererState.Registered) {
        say('REGISTERED', `${name} 200`);
        resolve();
      }
    });
    r.register({
      requestDelegate: { onReject: (resp) => fail(`${name} REGISTER rejected: ${resp.message.statusCode}`) },
    }).catch((e) => fail(`${name} register: ${e}`));
  });
  return r;
}

(async () => {
  const rb = await register(bob, 'bob');
  const ra = await register(alice, 'alice');
  say('READY');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  await new Promise((resolve) => {
    const target = UserAgent.makeURI(`sip:bob@${domain}`);
    new Messager(alice, target, 'hello bob, from SIP.js').message({
      requestDelegate: {
        onAccept: (resp) => {
          say('MESSAGE_ANSWERED', `${resp.message.statusCode}`);
          resolve();
        },
        onReject: (resp) => fail(`MESSAGE rejected: ${resp.message.statusCode}`),
      },
    }).catch((e) => fail(`MESSAGE: ${e}`));
  });
  for (const [r, name] of [[ra, 'alice'], [rb, 'bob']]) {
    await new Promise((resolve) => {
      r.stateChange.addListener((s) => {
        if (s === RegistererState.Unregistered) {
          say('UNREGISTERED', name);
          resolve();
        }
      });
      r.unregister().catch((e) => fail(`${name} unregister: ${e}`));
    });
  }
  await alice.stop();
  await bob.stop();
  say('DONE');
  setTimeout(() => process.exit(0), 200);
})();
