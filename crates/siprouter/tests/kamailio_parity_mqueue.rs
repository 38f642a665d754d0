//! Differential test against Kamailio itself, for the mqueue module: one
//! script run by Kamailio 5.6 and by siprouter on the same requests, and
//! what it reports compared: `mq_add`, `mq_fetch` (items in order, an
//! empty queue, an unknown one), `mq_size` (and its -1 for an empty
//! queue), `$mqk`, `$mqv`, `$mq_size`, `mq_pv_free`, queues with `size`
//! (the oldest item makes room) and `addmode` 1 (a queued key kept) and 2
//! (its value replaced); the second request finds what the first left.
//!
//! Without Kamailio and its mqueue module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

const MODULES: &[&str] = &["sl", "pv", "textops", "mqueue"];

const BODY: &str = r#"
modparam("mqueue", "mqueue", "name=q1")
modparam("mqueue", "mqueue", "name=q2;size=2")
modparam("mqueue", "mqueue", "name=q3;size=2;addmode=1")
modparam("mqueue", "mqueue", "name=q4;size=2;addmode=2")
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    $var(r) = "";
    $var(a1) = mq_add("q1", "k1", "v1");
    $var(a2) = mq_add("q1", "k2", "v2");
    $var(a3) = mq_add("q1", "k1", "v3");
    $var(s1) = mq_size("q1");
    $var(f1) = mq_fetch("q1");
    $var(r) = $var(r) + " a=" + $var(a1) + $var(a2) + $var(a3) + " s1=" + $var(s1) + " f1=" + $var(f1) + " k=" + $mqk(q1) + " v=" + $mqv(q1) + " sz=" + $mq_size(q1);
    mq_fetch("q1"); $var(r) = $var(r) + " k=" + $mqk(q1) + "/" + $mqv(q1);
    mq_fetch("q1"); $var(r) = $var(r) + " k=" + $mqk(q1) + "/" + $mqv(q1);
    $var(f4) = mq_fetch("q1"); $var(r) = $var(r) + " f4=" + $var(f4) + " k=" + $mqk(q1);
    $var(s0) = mq_size("q1"); $var(r) = $var(r) + " s0=" + $var(s0);
    $var(b1) = mq_add("q2", "k1", "v1"); $var(b2) = mq_add("q2", "k2", "v2"); $var(b3) = mq_add("q2", "k3", "v3");
    mq_fetch("q2"); $var(r) = $var(r) + " q2=" + $var(b1) + $var(b2) + $var(b3) + " first=" + $mqk(q2) + " sz=" + $mq_size(q2);
    $var(c1) = mq_add("q3", "k1", "v1"); $var(c2) = mq_add("q3", "k1", "v2"); $var(c3) = mq_add("q3", "k2", "v3");
    mq_fetch("q3"); $var(r) = $var(r) + " q3=" + $var(c1) + $var(c2) + $var(c3) + " first=" + $mqk(q3) + "/" + $mqv(q3) + " sz=" + $mq_size(q3);
    $var(d1) = mq_add("q4", "k1", "v1"); $var(d2) = mq_add("q4", "k1", "v2"); $var(d3) = mq_add("q4", "k2", "v3");
    mq_fetch("q4"); $var(r) = $var(r) + " q4=" + $var(d1) + $var(d2) + $var(d3) + " first=" + $mqk(q4) + "/" + $mqv(q4) + " sz=" + $mq_size(q4);
    mq_pv_free("q4"); $var(r) = $var(r) + " freed=" + $mqk(q4);
    $var(x) = mq_fetch("nope"); $var(r) = $var(r) + " nope=" + $var(x);
    append_to_reply("X-R: $var(r)\r\n");
    sl_send_reply("200", "ok");
}
"#;

#[test]
fn mqueue_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("mqueue");
    let reqs: Vec<(String, String)> = ["first", "second"]
        .iter()
        .map(|c| (c.to_string(), kamailio::options(c, "X-T: 1\r\n")))
        .collect();
    let (want, got) = kamailio::run_parity(
        &dir,
        MODULES,
        BODY,
        &[],
        &reqs,
        &["X-R"],
        siprouter::in_tree(),
    );
    assert!(want[0].contains("q2=111"), "Kamailio answered: {want:#?}");
    kamailio::conclude(&dir, &want, &got, "mqueue");
}
