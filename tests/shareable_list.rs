//! ShareableList (SHL-*) and SharedMemoryManager (SHM-11, SHM-12, SHM-B2), with real
//! processes, kills and corrupt segments. The IDs are defined in `docs/BEHAVIOURS.md`.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::{fork_child, guard, sigkill, wait_child, Ended, Rng};
#[cfg(feature = "serde")]
use multiproc::{Process, SharedMemory, SharedMemoryManager};
use multiproc::{ShareableItem as It, ShareableList, ShmError, ValueError};
use std::time::{Duration, Instant};

fn unique(tag: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!("mp-test-shl-{tag}-{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// SHL-1: Python's basics: mixed types, count and index, replacing an item by one of another
/// type, and a string too long for its slot refused with nothing written.
#[test]
fn shl_1_items_of_every_kind_and_their_room() {
    let sl = ShareableList::new([
        "howdy".into(),
        It::Bytes(b"HoWdY".to_vec()),
        It::Float(-273.154),
        It::Int(100),
        It::None,
        It::Bool(true),
        It::Int(42),
    ])
    .unwrap();
    assert_eq!(sl.len(), 7);
    assert_eq!(sl.get(0).unwrap(), It::Str("howdy".into()));
    assert_eq!(sl.get(1).unwrap(), It::Bytes(b"HoWdY".to_vec()));
    assert_eq!(sl.get(2).unwrap(), It::Float(-273.154));
    assert_eq!(sl.get(4).unwrap(), It::None);
    assert_eq!(sl.get(5).unwrap(), It::Bool(true));
    assert!(matches!(sl.get(7), Err(ValueError::IndexOutOfRange { index: 7, len: 7 })));
    assert_eq!(sl.count(&It::Int(42)).unwrap(), 1);
    assert_eq!(sl.index(&It::Int(42)).unwrap(), 6);
    assert!(matches!(sl.index(&It::Int(7)), Err(ValueError::NotFound)));
    // 'howdy' got 8 bytes of room: 'encodés' (8 bytes of UTF-8) fits, 9 bytes do not.
    assert_eq!(sl.capacity(0).unwrap(), 8);
    sl.set(0, "encodés").unwrap();
    assert_eq!(sl.get(0).unwrap(), It::Str("encodés".into()));
    assert!(matches!(sl.set(0, "123456789"), Err(ValueError::TooLong { len: 9, capacity: 8 })));
    assert_eq!(sl.get(0).unwrap(), It::Str("encodés".into()), "a refused set writes nothing");
    // Any kind may replace any other that fits.
    sl.set(3, "abc").unwrap();
    sl.set(1, 3.5).unwrap();
    sl.set(2, It::None).unwrap();
    assert_eq!(sl.to_vec().unwrap()[1..4], [It::Float(3.5), It::None, It::Str("abc".into())]);
    let empty = ShareableList::new([]).unwrap();
    assert!(empty.is_empty() && empty.to_vec().unwrap().is_empty());
}

/// SHL-2: one list seen by a forked child (a clone), a spawned child (an argument) and an
/// unrelated opener (the name): each one's write is seen by all.
#[cfg(feature = "serde")] // spawned processes and the manager
#[test]
fn shl_2_forked_spawned_and_named_processes_share_one_list() {
    let _g = guard();
    let sl = ShareableList::new([It::Int(0), "........".into()]).unwrap();
    let child = Process::new({
        let sl = sl.clone();
        move || sl.set(0, 1)
    });
    child.start().unwrap();
    assert!(child.join().unwrap().success());
    assert_eq!(sl.get(0).unwrap(), It::Int(1));
    let p = Process::builder().start_method(multiproc::StartMethod::Spawn).spawn(set_text, sl.clone()).unwrap();
    assert!(p.join().unwrap().success());
    assert_eq!(sl.get(1).unwrap(), It::Str("spawned".into()));

    let name = unique("named");
    let created = ShareableList::create(&name, [It::Bool(false)]).unwrap();
    let n = name.clone();
    let opener = Process::new(move || -> Result<(), Box<dyn std::error::Error>> {
        Ok(ShareableList::open_timeout(&n, Duration::from_secs(10))?.set(0, true)?)
    });
    opener.start().unwrap();
    assert!(opener.join().unwrap().success());
    assert_eq!(created.get(0).unwrap(), It::Bool(true));
    assert_eq!(created.name(), Some(name.as_str()));
    assert!(matches!(SharedMemory::open(&name), Err(ShmError::Mismatch { .. })), "a list is not another kind");
    drop(created);
    assert!(matches!(ShareableList::open(&name), Err(ShmError::NotFound { .. })), "the creator's drop removes it");
}

#[cfg(feature = "serde")]
fn set_text(sl: ShareableList) -> Result<(), ValueError> {
    sl.set(1, "spawned")
}

/// SHL-3 (beyond Python, whose list takes no lock): a writer SIGKILLed at random points inside
/// `set` never leaves a torn item. Readers see one whole value or the other; after the kill the
/// slot holds a whole value, or `None` if the writer died mid-write; the list stays usable.
#[test]
fn shl_3_a_writer_killed_mid_set_never_leaves_a_torn_item() {
    let _g = guard();
    let (a, b) = ("A".repeat(60), "B".repeat(60));
    let whole = |v: &It| matches!(v, It::Str(s) if *s == a || *s == b);
    let mut rng = Rng::new("shl_3");
    let mut lost = 0;
    let end = Instant::now() + common::chaos_secs(3);
    let mut rounds = 0;
    while Instant::now() < end || rounds < 20 {
        rounds += 1;
        let sl = ShareableList::new([It::Str(a.clone())]).unwrap();
        let (wa, wb) = (a.clone(), b.clone());
        let w = sl.clone();
        let pid = fork_child(move || loop {
            if w.set(0, wa.as_str()).is_err() || w.set(0, wb.as_str()).is_err() {
                return 1;
            }
        });
        let until = Instant::now() + Duration::from_micros(rng.range(100, 5_000));
        while Instant::now() < until {
            let v = sl.get(0).unwrap();
            assert!(whole(&v), "round {rounds}: a torn read {v:?}");
        }
        sigkill(pid);
        assert_eq!(wait_child(pid), Ended::Signal(libc::SIGKILL));
        let after = sl.get(0).expect("the lock is repaired, not unrecoverable");
        if after == It::None {
            lost += 1;
        } else {
            assert!(whole(&after), "round {rounds}: torn after the kill: {after:?}");
        }
        sl.set(0, "usable").unwrap();
        assert_eq!(sl.get(0).unwrap(), It::Str("usable".into()));
    }
    eprintln!("shl_3: {rounds} rounds, {lost} kills landed inside a set");
}

/// SHL-4: shared memory is untrusted. A state word with an unknown kind, a length beyond its
/// slot or a stale writing mark is `CorruptItem`; a slot whose place lies outside the segment
/// or overlaps the table refuses the open. Garbage anywhere never panics or hangs.
#[test]
fn shl_4_corrupt_segments_are_errors_not_undefined_behaviour() {
    use std::os::unix::fs::FileExt;
    let _g = guard();
    let name = unique("corrupt");
    let sl = ShareableList::create(&name, [It::Str("MARKER01".into())]).unwrap();
    let path = format!("/dev/shm/{name}");
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let data = bytes.windows(8).position(|w| w == b"MARKER01").expect("the item is in the segment") as u64;
    // The slot: [state, offset = data, capacity = 16], found by its offset and capacity words.
    let mut place = Vec::from(data.to_ne_bytes());
    place.extend_from_slice(&16u64.to_ne_bytes());
    let slot = bytes.windows(16).position(|w| w == place.as_slice()).expect("the slot is in the table") as u64 - 8;
    let put = |off: u64, v: u64| file.write_all_at(&v.to_ne_bytes(), off).unwrap();
    let good = (4u64 << 48) | 8;
    for (state, what) in [
        (9u64 << 48, "an unknown kind"),
        ((4 << 48) | 17, "a length beyond the slot"),
        (good | 1 << 63, "a writing mark"),
    ] {
        put(slot, state);
        assert!(matches!(sl.get(0), Err(ValueError::CorruptItem { index: 0 })), "{what}");
        assert!(matches!(sl.to_vec(), Err(ValueError::CorruptItem { index: 0 })), "{what}");
    }
    file.write_all_at(&[0xff; 8], data).unwrap();
    put(slot, good);
    assert!(matches!(sl.get(0), Err(ValueError::CorruptItem { index: 0 })), "text that is not UTF-8");
    sl.set(0, "repaired").unwrap();
    assert_eq!(sl.get(0).unwrap(), It::Str("repaired".into()), "a set rewrites a corrupt item");
    // A place outside the segment, or over the table: the open refuses it.
    for (word, v) in [(slot + 8, 1u64 << 40), (slot + 16, 1u64 << 40), (slot + 8, slot)] {
        let old =
            u64::from_ne_bytes(std::fs::read(&path).unwrap()[word as usize..word as usize + 8].try_into().unwrap());
        put(word, v);
        assert!(matches!(ShareableList::open(&name), Err(ShmError::Corrupt { .. })), "word {word} = {v}");
        put(word, old);
    }
    assert!(ShareableList::open(&name).is_ok());
    // Random garbage anywhere past the header: every call returns.
    let mut rng = Rng::new("shl_4");
    for _ in 0..300 {
        let len = std::fs::metadata(&path).unwrap().len();
        let off = rng.range(64, len - 8);
        put(off, rng.next_u64());
        let t = Instant::now();
        if let Ok(o) = ShareableList::open(&name) {
            let _ = (o.get(0), o.to_vec(), o.set(0, "x"));
        }
        assert!(t.elapsed() < Duration::from_secs(5), "a call on a corrupt list hung");
    }
}

/// SHM-11: every segment and list made through a manager is removed by `shutdown`, made in this
/// process or in a forked child; the manager refuses to make more afterwards.
#[cfg(feature = "serde")] // spawned processes and the manager
#[test]
fn shm_11_shutdown_removes_every_segment_made_through_it() {
    let _g = guard();
    let smm = SharedMemoryManager::start().unwrap();
    let mut names = Vec::new();
    for size in [1, 100, 4096] {
        let shm = smm.shared_memory(size).unwrap();
        assert_eq!(shm.len(), size);
        names.push(shm.name().unwrap().to_owned());
    }
    let sl = smm.shareable_list(["a".into(), It::Int(2)]).unwrap();
    names.push(sl.name().unwrap().to_owned());
    drop(sl); // the manager's segments outlive their handles
    let child = Process::new({
        let smm = smm.clone();
        move || smm.shared_memory(10).map(drop)
    });
    child.start().unwrap();
    assert!(child.join().unwrap().success());
    for n in &names {
        assert!(multiproc::Segment::open(n).is_ok(), "{n} exists before shutdown");
    }
    let mark = format!("-{}-", child.pid().unwrap());
    let childs: Vec<String> =
        common::our_named_segments().into_iter().filter(|n| n.starts_with("smm-") && n.contains(&mark)).collect();
    assert_eq!(childs.len(), 1, "the child's segment outlives the child");
    smm.shutdown().unwrap();
    for n in names.iter().chain(&childs) {
        assert!(matches!(SharedMemory::open(n), Err(ShmError::NotFound { .. })), "{n} outlived the manager");
    }
    assert!(matches!(smm.shared_memory(8), Err(multiproc::ManagerError::ServerGone)));
}

/// SHM-B2 (beyond Python, whose manager leaks its segments when its owner is killed): the
/// process that started the manager is SIGKILLed; its segments are removed anyway, and a child
/// of it that outlives it can make no more (they would have nobody to remove them).
#[cfg(feature = "serde")] // spawned processes and the manager
#[test]
fn shm_b2_the_segments_go_when_the_starting_process_is_killed() {
    let _g = guard();
    let (r, w) = multiproc::Pipe::one_way().unwrap();
    let go = multiproc::Event::new().unwrap();
    let late = multiproc::Queue::<String>::new().unwrap();
    let (go2, late2) = (go.clone(), late.clone());
    let pid = fork_child(move || {
        let mut w = w;
        let Ok(smm) = SharedMemoryManager::start() else { return 1 };
        let Ok(shm) = smm.shared_memory(64) else { return 2 };
        let Ok(sl) = smm.shareable_list([It::Int(1)]) else { return 3 };
        // A child that outlives its parent and then asks for a segment.
        let mine = smm.clone();
        let orphan = Process::new(move || -> Result<(), Box<dyn std::error::Error>> {
            go2.wait_timeout(Duration::from_secs(20))?;
            let outcome = match smm.shared_memory(8) {
                Err(multiproc::ManagerError::ServerGone) => "gone".to_string(),
                Ok(s) => s.name().unwrap_or("").to_owned(),
                Err(e) => e.to_string(),
            };
            Ok(late2.put(&outcome)?)
        });
        if orphan.start().is_err() {
            return 4;
        }
        let _keep = mine; // this process's last handle: dropping it would stop the manager
        let names = format!("{} {}", shm.name().unwrap(), sl.name().unwrap());
        if w.send_bytes(names.as_bytes()).is_err() {
            return 5;
        }
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let mut r = r;
    let names = String::from_utf8(r.recv_bytes_timeout(Duration::from_secs(20)).unwrap()).unwrap();
    let names: Vec<&str> = names.split(' ').collect();
    assert!(SharedMemory::open(names[0]).is_ok() && ShareableList::open(names[1]).is_ok());
    sigkill(pid);
    assert_eq!(wait_child(pid), Ended::Signal(libc::SIGKILL));
    let t = Instant::now();
    while names.iter().any(|n| multiproc::Segment::open(n).is_ok()) {
        assert!(t.elapsed() < Duration::from_secs(10), "the keeper did not remove {names:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    go.set();
    assert_eq!(late.get_timeout(Duration::from_secs(20)).unwrap(), "gone", "a segment nobody would remove");
}

/// SHM-12: dropping the last handle in the starting process stops the manager as `shutdown`
/// does; a copy dropped in a forked child does not.
#[cfg(feature = "serde")] // spawned processes and the manager
#[test]
fn shm_12_the_last_handle_of_the_starting_process_stops_it() {
    let _g = guard();
    let smm = SharedMemoryManager::start().unwrap();
    let name = smm.shared_memory(8).unwrap().name().unwrap().to_owned();
    let child = Process::new({
        let smm = smm.clone();
        move || drop(smm)
    });
    child.start().unwrap();
    assert!(child.join().unwrap().success());
    assert!(SharedMemory::open(&name).is_ok(), "a child's copy does not stop the manager");
    drop(smm);
    assert!(matches!(SharedMemory::open(&name), Err(ShmError::NotFound { .. })));
}
