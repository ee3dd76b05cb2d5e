use std::time::Duration;
use sixgate_e2e::{corpus, compare::summary, Knot, ZoneFile, udp_exchange, tcp_exchange, Rng};
use sixgate_e2e::differential::Transport;

#[test]
fn explore() {
    let zones = ZoneFile::all_testdata().unwrap();
    let knot = Knot::start(&zones).unwrap();
    let cases = corpus::build(&knot.zone_contents().unwrap(), &mut Rng::new(1));
    println!("corpus cases: {} (tcp {})", cases.len(), cases.iter().filter(|c| c.transport == Transport::Tcp).count());
    for case in corpus::handwritten("example.test") {
        let r = match case.transport {
            Transport::Tcp => tcp_exchange(knot.addr(), &case.bytes, Duration::from_secs(1)).unwrap(),
            _ => udp_exchange(knot.addr(), &case.bytes, Duration::from_millis(300), 1).unwrap(),
        };
        println!("{} {:60} -> {}", case.transport, case.label, r.as_deref().map_or("NONE".into(), summary));
    }
}
