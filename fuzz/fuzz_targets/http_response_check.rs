//! The checks of the `http_response` target, on one input: the first
//! octet says what the requests asked (two bits each for up to four: HEAD,
//! upgrade), the rest is what the backend sent.
//!
//! `Responses` follows the stream the same way whatever its pieces: fed
//! whole, cut in two at the second octet, or one octet at a time, it gives
//! the same events at the same offsets and the same end (an error, or how
//! the close ends it). It never consumes more than it is given, never
//! completes more responses than were asked for plus unsolicited ones,
//! and after a switch it reports nothing more.

use sixgate_proxy::http::{ResponseError, ResponseEvent, Responses};

type Run = (Vec<(usize, ResponseEvent)>, Result<Option<ResponseEvent>, ResponseError>);

fn run(asks: &[(bool, bool)], stream: &[u8], pieces: &[usize]) -> Run {
    let mut r = Responses::new();
    for &(head, upgrade) in asks {
        r.push(head, upgrade);
    }
    let mut events = Vec::new();
    let (mut fed, mut have) = (0, 0);
    let mut ends = pieces.iter().copied().chain(std::iter::once(stream.len()));
    loop {
        loop {
            let input = &stream[fed..have];
            let step = match r.feed(input) {
                Ok(s) => s,
                Err(e) => return (events, Err(e)),
            };
            assert!(step.consumed <= input.len());
            fed += step.consumed;
            match step.event {
                Some(e) => {
                    events.push((fed, e));
                    if e == ResponseEvent::Switched {
                        return (events, Ok(None));
                    }
                }
                None if step.consumed == 0 || fed == have => break,
                None => {}
            }
        }
        if have == stream.len() {
            break;
        }
        have = ends.next().unwrap_or(stream.len()).clamp(have, stream.len());
    }
    let end = r.eof();
    (events, end)
}

/// The target's checks on `data`.
pub(crate) fn check(data: &[u8]) {
    let Some((&flags, stream)) = data.split_first() else { return };
    let asks: Vec<(bool, bool)> =
        (0..4).map(|i| (flags >> (2 * i) & 1 == 1, flags >> (2 * i + 1) & 1 == 1)).collect();
    let whole = run(&asks, stream, &[]);
    let cut = usize::from(stream.first().copied().unwrap_or(0));
    assert_eq!(run(&asks, stream, &[cut]), whole, "cut at {cut}");
    let bytewise: Vec<usize> = (1..stream.len()).collect();
    assert_eq!(run(&asks, stream, &bytewise), whole, "one octet at a time");
    let (events, _) = &whole;
    assert!(events.windows(2).all(|w| w[0].0 <= w[1].0), "offsets go forward");
    assert!(events.iter().all(|(at, _)| *at <= stream.len()));
    let switches = events.iter().filter(|(_, e)| *e == ResponseEvent::Switched).count();
    assert!(switches <= 1);
    if switches == 1 {
        assert_eq!(events.last().map(|(_, e)| *e), Some(ResponseEvent::Switched));
    }
}
