use super::*;

/// 2000-02-29T12:34:56.789Z.
const MILLIS: u64 = 951_827_696_789;

fn clock_at(millis: u64) -> (Clock, Instant) {
    let mono = Instant::now();
    (Clock { wall: UNIX_EPOCH + Duration::from_millis(millis), mono }, mono)
}

fn http_record(path: &str, end_at: Instant) -> Record {
    Record {
        listener: Listener::Http,
        start: end_at - Duration::from_millis(12),
        end_at,
        client: "[::ffff:192.0.2.7]:51234".parse().unwrap(),
        backend: Some("[2001:db8::10]:8080".parse().unwrap()),
        host: "app.example.test".into(),
        method: "GET".into(),
        path: path.into(),
        status: 200,
        to_backend: 93,
        to_client: 1234,
        ending: Ending::Done,
    }
}

fn tls_record(end_at: Instant) -> Record {
    Record {
        listener: Listener::Tls,
        start: end_at - Duration::from_millis(250),
        end_at,
        client: "192.0.2.7:51236".parse().unwrap(),
        backend: Some("[2001:db8::10]:443".parse().unwrap()),
        host: "app.example.test".into(),
        method: String::new(),
        path: String::new(),
        status: 0,
        to_backend: 517,
        to_client: 3960,
        ending: Ending::Closed,
    }
}

fn line(f: Format, r: &Record, clock: &Clock) -> String {
    let mut out = Vec::new();
    format(f, r, clock, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn timestamps_are_rfc3339_utc_with_milliseconds() {
    let mut out = Vec::new();
    timestamp(0, &mut out);
    out.push(b' ');
    timestamp(MILLIS, &mut out);
    out.push(b' ');
    timestamp(1_795_629_600_007, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "1970-01-01T00:00:00.000Z 2000-02-29T12:34:56.789Z 2026-11-25T18:00:00.007Z"
    );
}

#[test]
fn a_record_is_dated_by_when_it_ended() {
    let (clock, now) = clock_at(MILLIS);
    assert_eq!(clock.millis(now), MILLIS);
    assert_eq!(clock.millis(now - Duration::from_millis(1500)), MILLIS - 1500);
}

#[test]
fn the_text_format_field_by_field() {
    let (clock, now) = clock_at(MILLIS);
    assert_eq!(
        line(Format::Text, &http_record("/index.html?q=1", now), &clock),
        "2000-02-29T12:34:56.789Z http 192.0.2.7:51234 app.example.test \"GET\" \"/index.html?q=1\" 200 93 1234 \
         [2001:db8::10]:8080 12 done\n"
    );
    assert_eq!(
        line(Format::Text, &tls_record(now), &clock),
        "2000-02-29T12:34:56.789Z tls 192.0.2.7:51236 app.example.test - - - 517 3960 [2001:db8::10]:443 250 closed\n"
    );
    let mut r = http_record("/", now);
    (r.status, r.backend, r.ending) = (0, None, Ending::TimedOut(Phase::Tunnel));
    assert!(line(Format::Text, &r, &clock).ends_with(" \"/\" - 93 1234 - 12 timeout-tunnel\n"));
}

/// A request-target that tries to end the line, close the quotes, or hide
/// bytes from a terminal cannot: every octet outside printable ASCII is
/// escaped, and so are the quote and the backslash.
#[test]
fn hostile_paths_cannot_forge_text_lines() {
    let (clock, now) = clock_at(MILLIS);
    let hostile = "/a\" 200 1 1 - 0 done\r\n2000-01-01T00:00:00.000Z http 6.6.6.6:1 x \"GET\" \"/\\\u{7}\u{7f}é\u{202e}";
    let text = line(Format::Text, &http_record(hostile, now), &clock);
    assert_eq!(text.matches('\n').count(), 1, "{text}");
    assert!(text.bytes().all(|b| (0x20..0x7f).contains(&b) || b == b'\n'), "{text}");
    assert!(
        text.contains(
            r#" "/a\" 200 1 1 - 0 done\x0D\x0A2000-01-01T00:00:00.000Z http 6.6.6.6:1 x \"GET\" \"/\\\x07\x7F\xC3\xA9\xE2\x80\xAE" 200 "#
        ),
        "{text}"
    );
    // Twelve fields, the quoted ones whole: the quotes left unescaped are
    // only the four around method and path.
    let unescaped_quotes = text.as_bytes().windows(2).filter(|w| w[1] == b'"' && w[0] != b'\\').count();
    assert_eq!(unescaped_quotes, 4, "{text}");
}

#[test]
fn json_lines_are_valid_json_with_every_field() {
    let (clock, now) = clock_at(MILLIS);
    let hostile = "/a\"}\r\n{\"x\":1\\\u{0}\u{1f}\u{7f}é\u{202e}😀";
    let text = line(Format::Json, &http_record(hostile, now), &clock);
    assert_eq!(text.matches('\n').count(), 1, "{text}");
    assert!(text.is_ascii(), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "time": "2000-02-29T12:34:56.789Z",
            "listener": "http",
            "client": "192.0.2.7:51234",
            "host": "app.example.test",
            "method": "GET",
            "path": hostile,
            "status": 200,
            "bytes_to_backend": 93,
            "bytes_to_client": 1234,
            "backend": "[2001:db8::10]:8080",
            "ms": 12,
            "end": "done",
        })
    );
    let v: serde_json::Value = serde_json::from_str(&line(Format::Json, &tls_record(now), &clock)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "time": "2000-02-29T12:34:56.789Z",
            "listener": "tls",
            "client": "192.0.2.7:51236",
            "host": "app.example.test",
            "method": null,
            "path": null,
            "status": null,
            "bytes_to_backend": 517,
            "bytes_to_client": 3960,
            "backend": "[2001:db8::10]:443",
            "ms": 250,
            "end": "closed",
        })
    );
}

#[test]
fn long_paths_and_methods_are_cut_at_a_character_boundary() {
    let path = format!("/{}", "é".repeat(MAX_PATH));
    let cut_path = cut(path.clone(), MAX_PATH);
    assert!(cut_path.len() <= MAX_PATH && cut_path.len() >= MAX_PATH - 1);
    assert!(path.starts_with(&cut_path));
    assert!(cut_path.capacity() < MAX_PATH + 8, "the spare room is given back");
    assert_eq!(cut("/short".into(), MAX_PATH), "/short");
    assert_eq!(cut("M".repeat(100), MAX_METHOD).len(), MAX_METHOD);
}

#[test]
fn one_entry_in_n_is_logged_counted_per_listener_kind() {
    let (log, _rx) = AccessLog::detached(3, QUEUE_BYTES);
    let http: Vec<bool> = (0..9).map(|_| log.sample(Listener::Http)).collect();
    assert_eq!(http, [true, false, false, true, false, false, true, false, false]);
    // TLS has its own count: its first is logged too.
    assert!(log.sample(Listener::Tls));
    assert!(!log.sample(Listener::Tls));
    // HTTP's count went on unchanged: the tenth is the fourth logged.
    let next: Vec<bool> = (0..3).map(|_| log.sample(Listener::Http)).collect();
    assert_eq!(next, [true, false, false]);
    let (every, _rx) = AccessLog::detached(1, QUEUE_BYTES);
    assert!((0..10).all(|_| every.sample(Listener::Http)));
    assert!(!AccessLog::off().sample(Listener::Http));
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_waiting() {
    let now = Instant::now();
    let one = http_record("/", now).cost();
    let (log, rx) = AccessLog::detached(1, 2 * one);
    for _ in 0..5 {
        log.send(http_record("/", now));
    }
    assert_eq!(log.dropped(), 3);
    assert_eq!(rx.try_iter().count(), 2);
    // Nothing took them from the queue: it stays full.
    log.send(http_record("/", now));
    assert_eq!(log.dropped(), 4);
}

fn settings(dir: &Path, format: Format) -> Settings {
    Settings { format, path: dir.join("access.log"), sample: 1 }
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// Polls `cond` until it holds, for at most 30 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_writer_writes_every_line_without_being_asked_to_flush() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), Format::Json);
    let log = AccessLog::start(&s).unwrap();
    for i in 0..100 {
        log.send(http_record(&format!("/{i}"), Instant::now()));
    }
    // Written once the queue is empty, not only at the end.
    eventually("100 lines", || read_lines(&s.path).len() == 100);
    assert_eq!(log.lines(), 100);
    let lines = read_lines(&s.path);
    for (i, l) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["path"], format!("/{i}"));
    }
    log.finish();
    assert_eq!(log.dropped(), 0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&s.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o007, 0, "not for everyone to read: {mode:o}");
    }
}

/// logrotate moves the file away, then signals: the lines after the
/// reopen go to a new file at the path.
#[test]
fn reopen_starts_a_new_file_at_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), Format::Text);
    let log = AccessLog::start(&s).unwrap();
    log.send(http_record("/before", Instant::now()));
    eventually("the first line", || log.lines() == 1);
    let moved = dir.path().join("access.log.1");
    std::fs::rename(&s.path, &moved).unwrap();
    log.reopen();
    eventually("the new file", || s.path.exists());
    log.send(http_record("/after", Instant::now()));
    log.finish();
    let (old, new) = (read_lines(&moved), read_lines(&s.path));
    assert_eq!(old.len(), 1);
    assert!(old[0].contains("\"/before\""), "{old:?}");
    assert_eq!(new.len(), 1);
    assert!(new[0].contains("\"/after\""), "{new:?}");
}

/// A file that cannot be written to (a full disk) loses lines, counted,
/// and the writer goes on.
#[test]
fn failed_writes_are_counted_as_dropped_and_the_writer_goes_on() {
    let s = Settings { format: Format::Text, path: "/dev/full".into(), sample: 1 };
    let log = AccessLog::start(&s).unwrap();
    for _ in 0..3 {
        log.send(http_record("/", Instant::now()));
    }
    eventually("three dropped", || log.dropped() == 3);
    log.send(http_record("/", Instant::now()));
    eventually("four dropped", || log.dropped() == 4);
    log.finish();
    assert_eq!(log.lines(), 0);
}

#[test]
fn an_unwritable_path_is_an_error_at_start_and_off_is_no_log() {
    let s = Settings { format: Format::Json, path: "/nonexistent-dir/access.log".into(), sample: 1 };
    assert!(AccessLog::start(&s).is_err());
    let off = AccessLog::start(&Settings { format: Format::Off, ..s.clone() }).unwrap();
    assert!(!off.is_on());
    let zero = Settings { format: Format::Json, sample: 0, path: std::env::temp_dir().join("never.log") };
    assert!(AccessLog::start(&zero).is_err());
    assert_eq!("json".parse::<Format>(), Ok(Format::Json));
    assert!("JSON".parse::<Format>().is_err());
}

/// The byte counts of pipelined requests: each request's octets to the
/// backend run from its head to the next one's, and its response's from
/// the end of the one before; a line is written once the response is
/// written in full.
#[test]
fn pipelined_requests_get_their_own_octets() {
    let (log, rx) = AccessLog::detached(1, QUEUE_BYTES);
    let ends = Ends { client: "192.0.2.7:1".parse().unwrap(), backend: None, log: &log };
    let mut h = HttpLog::default();
    // A PROXY header of 20 octets is queued before the first head.
    h.request(&log, "app.example.test", "GET".into(), "/1".into(), 20);
    h.wrote_up(20 + 50);
    h.request(&log, "app.example.test", "POST".into(), "/2".into(), 0);
    h.wrote_up(80);
    // Both responses in one read: 30 and 40 octets.
    h.followed(30);
    h.answered(200, ends);
    h.followed(40);
    h.answered(404, ends);
    assert!(rx.try_recv().is_err(), "nothing is written to the client yet");
    h.wrote_down(29, ends);
    assert!(rx.try_recv().is_err());
    h.wrote_down(1, ends);
    let first = rx.try_recv().unwrap();
    assert_eq!((first.path.as_str(), first.status, first.to_backend, first.to_client), ("/1", 200, 50, 30));
    assert_eq!(first.ending, Ending::Done);
    h.wrote_down(40, ends);
    let second = rx.try_recv().unwrap();
    assert_eq!(
        (second.method.as_str(), second.status, second.to_backend, second.to_client),
        ("POST", 404, 80, 40)
    );
    // A third, cut short by the backend after 10 octets of its response.
    h.request(&log, "app.example.test", "GET".into(), "/3".into(), 0);
    h.wrote_up(60);
    h.followed(10);
    h.wrote_down(10, ends);
    h.end(ends, Ending::Reset);
    let third = rx.try_recv().unwrap();
    assert_eq!((third.status, third.to_backend, third.to_client, third.ending), (0, 60, 10, Ending::Reset));
    assert!(rx.try_recv().is_err());
}

#[test]
fn sampled_out_requests_leave_no_line_and_do_not_shift_the_counts() {
    let (log, rx) = AccessLog::detached(2, QUEUE_BYTES);
    let ends = Ends { client: "192.0.2.7:1".parse().unwrap(), backend: None, log: &log };
    let mut h = HttpLog::default();
    for (i, size) in [(1u64, 10u64), (2, 20), (3, 30)] {
        h.request(&log, "app.example.test", "GET".into(), format!("/{i}"), 0);
        h.wrote_up(size as usize);
        h.followed(size as usize * 2);
        h.answered(200, ends);
        h.wrote_down(size as usize * 2, ends);
    }
    let got: Vec<(String, u64, u64)> = rx.try_iter().map(|r| (r.path, r.to_backend, r.to_client)).collect();
    assert_eq!(got, [("/1".into(), 10, 20), ("/3".into(), 30, 60)]);
}

#[test]
fn an_upgrade_request_s_line_counts_its_tunnel() {
    let (log, rx) = AccessLog::detached(1, QUEUE_BYTES);
    let ends = Ends { client: "192.0.2.7:1".parse().unwrap(), backend: None, log: &log };
    let mut h = HttpLog::default();
    h.request(&log, "app.example.test", "GET".into(), "/ws".into(), 0);
    h.wrote_up(100);
    // The 101 head, followed and written; no final response.
    h.followed(70);
    h.wrote_down(70, ends);
    assert!(rx.try_recv().is_err());
    h.tunnel_end(ends, 1000, 2000, Ending::Closed);
    let r = rx.try_recv().unwrap();
    assert_eq!((r.status, r.to_backend, r.to_client, r.ending), (101, 1100, 2070, Ending::Closed));
}

#[test]
fn with_the_log_off_nothing_is_kept() {
    let log = AccessLog::off();
    let ends = Ends { client: "192.0.2.7:1".parse().unwrap(), backend: None, log: &log };
    let mut h = HttpLog::default();
    h.request(&log, "app.example.test", "GET".into(), "/".into(), 0);
    h.followed(10);
    h.answered(200, ends);
    assert!(h.pending.is_empty() && h.host.is_none());
}
