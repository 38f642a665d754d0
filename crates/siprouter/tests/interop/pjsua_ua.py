#!/usr/bin/env python3
"""A real SIP user agent (PJSUA2, from PyPI's pjsua2-python) for
crates/siprouter/tests/interop_ua.rs.

One process is one UA with one account: it registers through siprouter
with its password (digest), then as the callee waits for a call, answers
it and waits for the caller's BYE, or as the caller waits for "call" on
stdin, calls the target, waits until the call is confirmed, holds it for a
moment and hangs up. Both unregister at the end.

Events go to stdout, one a line, "EVENT <name> <details>", flushed at once,
and the last line is "RESULT ok" or "RESULT fail <why>" (exit status 0 or
1). PJSIP's own log (with every SIP message) goes to --log. There is no
sound device (the null device) and no network use outside 127.0.0.1.
"""

import argparse
import os
import select
import sys
import time

import pjsua2 as pj


def emit(*parts):
    print("EVENT", *parts, flush=True)


def finish(ok, why=""):
    print("RESULT ok" if ok else f"RESULT fail {why}", flush=True)
    return 0 if ok else 1


class Call(pj.Call):
    def __init__(self, ua, acc, call_id=pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.ua = ua
        self.states = []
        self.confirmed = False
        self.disconnected = False
        self.media_active = False
        self.last_code = 0
        self.rtp = (0, 0)

    def onCallState(self, prm):
        ci = self.getInfo()
        name = ci.stateText
        self.states.append(name)
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.confirmed = True
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected = True
        self.last_code = ci.lastStatusCode
        emit("call_state", name, ci.lastStatusCode, ci.lastReason.replace(" ", "_"))

    def sample_rtp(self):
        """Keeps the RTP packet counts of the audio stream while it lives."""
        try:
            st = self.getStreamStat(0)
            self.rtp = (st.rtcp.rxStat.pkt, st.rtcp.txStat.pkt)
        except pj.Error:
            pass

    def onCallMediaState(self, prm):
        ci = self.getInfo()
        for mi in ci.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                if not self.media_active:
                    self.media_active = True
                    emit("media", "active")


class Account(pj.Account):
    def __init__(self, ua):
        super().__init__()
        self.ua = ua
        self.reg_codes = []
        self.reg_active = False

    def onRegState(self, prm):
        info = self.getInfo()
        self.reg_codes.append(prm.code)
        self.reg_active = info.regIsActive
        emit("reg", prm.code, "active" if info.regIsActive else "inactive", info.regExpiresSec)

    def onIncomingCall(self, prm):
        call = Call(self.ua, self, prm.callId)
        self.ua.calls.append(call)
        ci = call.getInfo()
        emit("incoming", ci.remoteUri.replace(" ", "_"))
        op = pj.CallOpParam()
        op.statusCode = 180
        call.answer(op)
        op = pj.CallOpParam()
        op.statusCode = 200
        call.answer(op)


class Ua:
    def __init__(self, args):
        self.args = args
        self.calls = []
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        # Callbacks run on this thread only, from libHandleEvents.
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.userAgent = f"pjsua2-interop/{self.ep.libVersion().full}"
        cfg.uaConfig.maxCalls = 4
        cfg.logConfig.level = 5
        cfg.logConfig.consoleLevel = 0
        cfg.logConfig.msgLogging = 1
        cfg.logConfig.filename = args.log
        cfg.medConfig.noVad = True
        cfg.medConfig.hasIoqueue = True
        self.ep.libInit(cfg)
        self.ep.audDevManager().setNullDev()
        # G.711 only: a small SDP keeps the INVITE under PJSIP's 1300-byte
        # UDP threshold (above it PJSIP tries TCP first).
        for codec in self.ep.codecEnum2():
            prio = 255 if codec.codecId.startswith("PCMU/") else 0
            self.ep.codecSetPriority(codec.codecId, prio)
        tcfg = pj.TransportConfig()
        tcfg.boundAddress = "127.0.0.1"
        tcfg.publicAddress = "127.0.0.1"
        tcfg.port = 0
        self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        self.ep.libStart()

        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{args.user}@{args.domain}"
        acfg.regConfig.registrarUri = f"sip:{args.domain}"
        acfg.regConfig.timeoutSec = 300
        acfg.regConfig.retryIntervalSec = 0
        acfg.regConfig.registerOnAdd = False
        proxy = f"sip:{args.proxy};lr"
        acfg.sipConfig.proxies.append(proxy)
        cred = pj.AuthCredInfo("digest", "*", args.user, 0, args.password)
        acfg.sipConfig.authCreds.append(cred)
        acfg.natConfig.iceEnabled = False
        acfg.natConfig.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
        acfg.natConfig.mediaStunUse = pj.PJSUA_STUN_USE_DISABLED
        acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        acfg.mediaConfig.transportConfig.publicAddress = "127.0.0.1"
        # RTP/RTCP on ports the system picks (not 4000 for both UAs).
        acfg.mediaConfig.transportConfig.port = 0
        acfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_DISABLED
        self.acc = Account(self)
        self.acc.create(acfg)

    def poll(self, secs):
        self.ep.libHandleEvents(int(secs * 1000))

    def wait(self, what, cond, deadline):
        while not cond():
            if time.monotonic() > deadline:
                raise TimeoutError(what)
            self.poll(0.02)

    def register(self, deadline):
        self.acc.setRegistration(True)
        self.wait("registration", lambda: self.acc.reg_codes, deadline)
        code = self.acc.reg_codes[-1]
        if code != 200 or not self.acc.reg_active:
            raise RuntimeError(f"registration answered {code}")
        emit("registered", self.args.user)

    def unregister(self, deadline):
        n = len(self.acc.reg_codes)
        self.acc.setRegistration(False)
        self.wait("unregistration", lambda: len(self.acc.reg_codes) > n, deadline)
        code = self.acc.reg_codes[-1]
        if code != 200:
            raise RuntimeError(f"unregistration answered {code}")
        emit("unregistered", self.args.user)

    def stdin_line(self, deadline):
        while time.monotonic() < deadline:
            self.poll(0.02)
            r, _, _ = select.select([sys.stdin], [], [], 0)
            if r:
                return sys.stdin.readline().strip()
        raise TimeoutError("stdin")

    def run_callee(self, deadline):
        self.register(deadline)
        self.wait("incoming call", lambda: self.calls, deadline)
        call = self.calls[0]
        self.wait("confirmed", lambda: call.confirmed, deadline)
        emit("established")
        self.wait("media", lambda: call.media_active, deadline)
        self.wait("disconnect", lambda: call.sample_rtp() or call.disconnected, deadline)
        emit("rtp", f"rx={call.rtp[0]}", f"tx={call.rtp[1]}")
        emit("ended", call.last_code)
        self.unregister(deadline)

    def run_caller(self, deadline):
        self.register(deadline)
        line = self.stdin_line(deadline)
        if line != "call":
            raise RuntimeError(f"expected 'call' on stdin, got {line!r}")
        call = Call(self, self.acc)
        self.calls.append(call)
        call.makeCall(f"sip:{self.args.target}@{self.args.domain}", pj.CallOpParam(True))
        self.wait(
            "confirmed",
            lambda: call.confirmed or call.disconnected,
            deadline,
        )
        if not call.confirmed:
            raise RuntimeError(f"call failed with {call.last_code}")
        emit("established")
        self.wait("media", lambda: call.media_active, deadline)
        # Let a few RTP packets flow, then hang up (BYE through siprouter).
        hold_until = time.monotonic() + self.args.hold
        while time.monotonic() < hold_until:
            self.poll(0.02)
        call.sample_rtp()
        emit("rtp", f"rx={call.rtp[0]}", f"tx={call.rtp[1]}")
        call.hangup(pj.CallOpParam(True))
        self.wait("disconnect", lambda: call.disconnected, deadline)
        emit("ended", call.last_code)
        self.unregister(deadline)

    def close(self):
        # Calls and the account go before the library.
        self.calls.clear()
        self.acc.shutdown()
        self.ep.libDestroy()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--role", choices=["caller", "callee"], required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--domain", required=True)
    p.add_argument("--proxy", required=True, help="host:port of siprouter")
    p.add_argument("--target", help="user the caller calls")
    p.add_argument("--log", required=True)
    p.add_argument("--hold", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=20.0)
    args = p.parse_args()
    deadline = time.monotonic() + args.timeout
    ua = Ua(args)
    emit("version", ua.ep.libVersion().full)
    try:
        if args.role == "callee":
            ua.run_callee(deadline)
        else:
            ua.run_caller(deadline)
        rc = finish(True)
    except Exception as e:  # reported to the test, which fails
        rc = finish(False, f"{type(e).__name__}: {e}")
    try:
        ua.close()
    except Exception:
        pass
    sys.stdout.flush()
    # Skip the interpreter's teardown of PJSIP objects.
    os._exit(rc)


if __name__ == "__main__":
    main()
