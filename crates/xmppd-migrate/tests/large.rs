//! The scale: 100k accounts with 20-item rosters, streamed in
//! bounded memory. Prints the timings (`cargo test --release -p
//! xmppd-migrate --test large -- --nocapture` for representative figures).
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::BufWriter;
use std::time::Instant;

use xmppd_jid::BareJid;
use xmppd_migrate::{
    Password, Reader, ReaderOptions, RosterEntry, ScramEntry, ScramHash, Subscription, UserData, Writer,
};

const USERS: usize = 100_000;
const ROSTER: usize = 20;

fn scram(hash: ScramHash) -> ScramEntry {
    ScramEntry {
        mechanism_hash: hash,
        iterations: 4096,
        salt: vec![7; 16],
        stored_key: vec![1; hash.output_len()],
        server_key: vec![2; hash.output_len()],
    }
}

#[test]
fn hundred_thousand_users_stream_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.xml");
    let contacts: Vec<BareJid> = (0..1000).map(|n| format!("contact{n}@example.org").parse().unwrap()).collect();

    let started = Instant::now();
    let mut writer = Writer::new(BufWriter::new(File::create(&path).unwrap()));
    writer.begin_host(&"example.com".parse().unwrap()).unwrap();
    let mut user = UserData {
        password: Some(Password::Scram(vec![scram(ScramHash::Sha1), scram(ScramHash::Sha256)])),
        ..UserData::default()
    };
    for n in 0..USERS {
        user.username = format!("user{n}");
        user.roster = (0..ROSTER)
            .map(|k| RosterEntry {
                jid: contacts[(n * 7 + k * 131) % contacts.len()].clone(),
                name: Some(format!("Contact {k}")),
                subscription: Subscription::Both,
                ask: false,
                approved: false,
                groups: vec!["Friends".to_owned()],
            })
            .collect();
        writer.write_user(&user).unwrap();
    }
    writer.end_host().unwrap();
    writer.finish().unwrap();
    let written = started.elapsed();
    let size = std::fs::metadata(&path).unwrap().len();

    let started = Instant::now();
    let options = ReaderOptions { read_size: 64 * 1024, ..ReaderOptions::default() };
    let mut reader = Reader::open(&path).unwrap().with_options(options);
    let (mut users, mut items) = (0usize, 0usize);
    for item in reader.by_ref() {
        let (_, user) = item.unwrap();
        users += 1;
        items += user.roster.len();
    }
    let read = started.elapsed();

    println!(
        "{USERS} users x {ROSTER} roster items: {:.1} MB written in {:.2} s, read in {:.2} s ({:.0} users/s), \
         peak buffered {} bytes",
        size as f64 / 1e6,
        written.as_secs_f64(),
        read.as_secs_f64(),
        USERS as f64 / read.as_secs_f64(),
        reader.peak_buffered(),
    );
    assert_eq!((users, items), (USERS, USERS * ROSTER));
    // One read plus (part of) one user, never the document.
    assert!(reader.peak_buffered() <= 64 * 1024 + 8 * 1024, "peak {}", reader.peak_buffered());
}
