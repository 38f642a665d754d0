// Two JsSIP user agents (alice and bob) against siprouter over WebSocket,
// for crates/siprouter/tests/interop_jssip.rs. JsSIP is the browser SIP
// library; in Node.js its own WebSocketInterface runs over the `ws`
// package's WebSocket, which has the browser's API.
//
// Usage: node jssip_ua.js <ws-url> <domain>
// Prints one line per event ("EVENT <name> <detail>"), waits for a line on
// stdin once both are registered ("EVENT READY"), and exits 0 when
// both registered, alice's MESSAGE reached bob and was answered, bob's
// OPTIONS to alice was answered, and both unregistered; 1 on a failure
// or after 15 s.
'use strict';

global.WebSocket = require('ws');
const JsSIP = require('jssip');

const [url, domain] = process.argv.slice(2);
const say = (name, detail = '') => console.log(`EVENT ${name} ${detail}`.trim());
const fail = (why) => {
  say('FAIL', why);
  process.exit(1);
};
setTimeout(() => fail('timeout'), 15000);

function ua(user) {
  const u = new JsSIP.UA({
    sockets: [new JsSIP.WebSocketInterface(url)],
    uri: `sip:${user}@${domain}`,
    password: `${user}-secret`,
    register: true,
    register_expires: 300,
    connection_recovery_min_interval: 1,
  });
  u.on('registrationFailed', (e) => fail(`${user} registration failed: ${e.cause}`));
  return u;
}

const alice = ua('alice');
const bob = ua('bob');

function registered(u, name) {
  return new Promise((resolve) => {
    u.on('registered', (e) => {
      say('REGISTERED', `${name} ${e.response.status_code}`);
      resolve();
    });
    u.start();
  });
}

bob.on('newMessage', (e) => {
  if (e.originator === 'remote') {
    say('BOB_GOT_MESSAGE', e.request.body);
  }
});
alice.on('newOptions', (e) => {
  if (e.originator === 'remote') {
    say('ALICE_GOT_OPTIONS', e.request.from.uri.user);
  }
});

(async () => {
  await registered(bob, 'bob');
  await registered(alice, 'alice');
  say('READY');
  // The test looks at the server while both are registered, then says go.
  await new Promise((resolve) => process.stdin.once('data', resolve));
  await new Promise((resolve) => {
    alice.sendMessage(`sip:bob@${domain}`, 'hello bob, over WebSocket', {
      eventHandlers: {
        succeeded: (e) => {
          say('MESSAGE_ANSWERED', `${e.response.status_code}`);
          resolve();
        },
        failed: (e) => fail(`MESSAGE failed: ${e.cause}`),
      },
    });
  });
  await new Promise((resolve) => {
    bob.sendOptions(`sip:alice@${domain}`, null, {
      eventHandlers: {
        succeeded: (e) => {
          say('OPTIONS_ANSWERED', `${e.response.status_code}`);
          resolve();
        },
        failed: (e) => fail(`OPTIONS failed: ${e.cause}`),
      },
    });
  });
  for (const [u, name] of [[alice, 'alice'], [bob, 'bob']]) {
    await new Promise((resolve) => {
      u.on('unregistered', () => {
        say('UNREGISTERED', name);
        resolve();
      });
      u.unregister();
    });
  }
  alice.stop();
  bob.stop();
  say('DONE');
  setTimeout(() => process.exit(0), 200);
})();
