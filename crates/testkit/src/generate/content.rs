//! Simulated world: apps, their tools, user tasks, tool results and free text.

use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::Rng;

use super::write::push_json_string;

/// A declared tool of one app.
#[derive(Debug)]
pub(crate) struct ToolDef {
    pub(crate) name: &'static str,
    pub(crate) app: &'static str,
    pub(crate) description: &'static str,
    /// (parameter name, JSON schema type)
    pub(crate) params: &'static [(&'static str, &'static str)],
    /// Typical latency in milliseconds.
    pub(crate) latency_ms: u32,
}

macro_rules! tool {
    ($name:literal, $app:literal, $lat:literal, $desc:literal, [$(($p:literal, $t:literal)),*]) => {
        ToolDef { name: $name, app: $app, description: $desc, params: &[$(($p, $t)),*], latency_ms: $lat }
    };
}

pub(crate) static TOOLS: &[ToolDef] = &[
    tool!("spotify__login", "spotify", 180, "Log in to Spotify and obtain an access token for subsequent calls.", [("username", "string"), ("password", "string")]),
    tool!("spotify__search_songs", "spotify", 260, "Search the Spotify catalogue for songs matching a free-text query. Results are paginated (5 per page).", [("query", "string"), ("page_index", "integer")]),
    tool!("spotify__show_playlist", "spotify", 120, "Show the details of one of the user's playlists, including its songs in order.", [("playlist_id", "integer")]),
    tool!("spotify__create_playlist", "spotify", 150, "Create a new, empty playlist owned by the user.", [("title", "string")]),
    tool!("spotify__add_song_to_playlist", "spotify", 140, "Append a song to a playlist owned by the user.", [("playlist_id", "integer"), ("song_id", "integer")]),
    tool!("spotify__show_liked_songs", "spotify", 220, "List the songs the user has liked, most recent first. Paginated (20 per page).", [("page_index", "integer")]),
    tool!("venmo__login", "venmo", 180, "Log in to Venmo and obtain an access token.", [("username", "string"), ("password", "string")]),
    tool!("venmo__search_users", "venmo", 200, "Search Venmo users by name, email or phone number.", [("query", "string")]),
    tool!("venmo__send_money", "venmo", 320, "Send money from the user's Venmo balance to another Venmo user.", [("receiver_email", "string"), ("amount", "number"), ("description", "string")]),
    tool!("venmo__request_money", "venmo", 290, "Request money from another Venmo user.", [("user_email", "string"), ("amount", "number"), ("description", "string")]),
    tool!("venmo__show_transactions", "venmo", 240, "List the user's Venmo transactions, most recent first. Paginated (20 per page).", [("page_index", "integer")]),
    tool!("gmail__login", "gmail", 180, "Log in to Gmail and obtain an access token.", [("username", "string"), ("password", "string")]),
    tool!("gmail__list_emails", "gmail", 270, "List email threads in a label (inbox, sent, archive), newest first. Paginated.", [("label", "string"), ("page_index", "integer")]),
    tool!("gmail__read_email", "gmail", 110, "Read the full content of one email thread.", [("email_id", "integer")]),
    tool!("gmail__send_email", "gmail", 360, "Compose and send an email.", [("to", "string"), ("subject", "string"), ("body", "string")]),
    tool!("file_system__login", "file_system", 90, "Log in to the file system service.", [("username", "string"), ("password", "string")]),
    tool!("file_system__read_file", "file_system", 40, "Read the content of a text file.", [("path", "string")]),
    tool!("file_system__write_file", "file_system", 60, "Create or overwrite a text file.", [("path", "string"), ("content", "string")]),
    tool!("file_system__list_directory", "file_system", 50, "List the entries of a directory with their sizes and modification times.", [("path", "string")]),
    tool!("file_system__delete_file", "file_system", 45, "Delete a file.", [("path", "string")]),
    tool!("phone__login", "phone", 150, "Log in to the phone app.", [("username", "string"), ("password", "string")]),
    tool!("phone__search_contacts", "phone", 90, "Search the user's contacts by name or relationship.", [("query", "string")]),
    tool!("phone__send_text_message", "phone", 230, "Send a text message to a phone number.", [("phone_number", "string"), ("message", "string")]),
    tool!("phone__show_alarms", "phone", 60, "List the user's alarms.", []),
    tool!("calendar__login", "calendar", 150, "Log in to the calendar app.", [("username", "string"), ("password", "string")]),
    tool!("calendar__list_events", "calendar", 210, "List calendar events on a given date (YYYY-MM-DD).", [("date", "string")]),
    tool!("calendar__create_event", "calendar", 170, "Create a calendar event.", [("title", "string"), ("start", "string"), ("end", "string")]),
    tool!("calendar__delete_event", "calendar", 90, "Delete a calendar event.", [("event_id", "integer")]),
];

pub(crate) fn tool_def(name: &str) -> Option<&'static ToolDef> {
    TOOLS.iter().find(|t| t.name == name)
}

/// Tools that do not exist but an LLM plausibly invents.
pub(crate) static HALLUCINATED_TOOLS: &[(&str, &str)] = &[
    ("spotify", "spotify__search_songs_by_mood"),
    ("spotify", "spotify__get_top_tracks"),
    ("venmo", "venmo__split_bill"),
    ("venmo", "venmo__get_balance_history"),
    ("gmail", "gmail__summarize_inbox"),
    ("gmail", "gmail__search_emails_by_sender"),
    ("file_system", "file_system__search_files_by_content"),
    ("file_system", "file_system__move_to_trash"),
    ("phone", "phone__get_recent_calls_summary"),
    ("calendar", "calendar__find_free_slot"),
];

/// One requested tool call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) id: String,
    pub(crate) tool: String,
    pub(crate) args: String,
}

/// A user task: text and the planned tool calls (logins excluded).
#[derive(Debug)]
pub(crate) struct Task {
    pub(crate) text: String,
    pub(crate) apps: Vec<&'static str>,
    pub(crate) steps: Vec<Call>,
    pub(crate) summary: String,
}

const FIRST: &[&str] = &[
    "Alex", "Jordan", "Priya", "Mateo", "Chen", "Fatima", "Liam", "Sofia", "Noah", "Aisha",
    "Kenji", "Olivia", "Diego", "Hana", "Marcus", "Elena", "Tariq", "Grace", "Ravi", "Zoe",
];
const LAST: &[&str] = &[
    "Nguyen", "Patel", "Garcia", "Kim", "Okafor", "Silva", "Johnson", "Rossi", "Tanaka", "Cohen",
    "Muller", "Hughes", "Reyes", "Ahmed", "Larsen",
];
const WORDS: &[&str] = &[
    "summer", "road", "trip", "morning", "focus", "jazz", "rain", "city", "lights", "ocean",
    "drive", "golden", "hour", "midnight", "coffee", "sunday", "chill", "workout", "retro",
    "dream", "wave", "river", "echo", "velvet", "neon", "forest", "blue", "paper", "moon", "fire",
    "glass", "winter", "garden", "northern", "silver", "quiet", "electric", "wild",
];
const TOPICS: &[&str] = &[
    "quarterly budget",
    "team offsite",
    "apartment lease",
    "dentist appointment",
    "project kickoff",
    "book club",
    "utility bills",
    "birthday dinner",
    "flight itinerary",
    "gym membership",
    "design review",
    "grocery run",
    "car service",
    "tax documents",
    "wedding RSVP",
];
const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DIRS: &[&str] = &["documents", "downloads", "photos", "notes", "work", "bills"];
const EXTS: &[&str] = &["txt", "md", "csv", "json"];
const FILLER: &[&str] = &[
    "The API documentation says the response is paginated, so I should check whether there are more pages.",
    "I will keep the access token from the login response and pass it implicitly to the next calls.",
    "The previous result contains the identifiers I need for the next step.",
    "I should double-check the exact spelling of the name before acting on it.",
    "The output is a JSON list; I will pick the entries that match the request.",
    "This matches what the user described, so I can proceed.",
    "I need to be careful to only modify the items the user asked about.",
    "The supervisor's credentials for this app are available from the account passwords list.",
    "Dates in this app are formatted as YYYY-MM-DD, which matches the request.",
    "The amount should be a number in dollars with at most two decimal places.",
    "I'll summarize the result for the user once everything is in place.",
    "The ordering of the results is by recency, which is what I want here.",
];

pub(crate) fn person(rng: &mut SmallRng) -> (String, String) {
    let f = *FIRST.choose(rng).unwrap_or(&"Alex");
    let l = *LAST.choose(rng).unwrap_or(&"Kim");
    let email = format!("{}.{}@example.com", f.to_lowercase(), l.to_lowercase());
    (format!("{f} {l}"), email)
}

pub(crate) fn title(rng: &mut SmallRng) -> String {
    let a = WORDS.choose(rng).unwrap_or(&"blue");
    let b = WORDS.choose(rng).unwrap_or(&"moon");
    let mut s = String::new();
    for (i, w) in [a, b].iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let mut c = w.chars();
        if let Some(f) = c.next() {
            s.extend(f.to_uppercase());
            s.push_str(c.as_str());
        }
    }
    s
}

pub(crate) fn path(rng: &mut SmallRng) -> String {
    format!(
        "/home/user/{}/{}_{}.{}",
        DIRS.choose(rng).unwrap_or(&"documents"),
        WORDS.choose(rng).unwrap_or(&"notes"),
        rng.random_range(1..400),
        EXTS.choose(rng).unwrap_or(&"txt")
    )
}

pub(crate) fn date(rng: &mut SmallRng) -> String {
    format!(
        "2026-{:02}-{:02}",
        rng.random_range(4..8),
        rng.random_range(1..29)
    )
}

pub(crate) fn hex(rng: &mut SmallRng, n: usize) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(n);
    let mut bits = 0u64;
    for i in 0..n {
        if i % 16 == 0 {
            bits = rng.random();
        }
        s.push(H[(bits & 15) as usize] as char);
        bits >>= 4;
    }
    s
}

pub(crate) fn call_id(rng: &mut SmallRng) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = String::from("call_");
    for _ in 0..24 {
        s.push(A[rng.random_range(0..A.len())] as char);
    }
    s
}

/// A filler sentence of agent reasoning.
pub(crate) fn filler(rng: &mut SmallRng) -> &'static str {
    FILLER.choose(rng).unwrap_or(&FILLER[0])
}

/// JSON object builder for tool-call arguments.
#[derive(Debug, Default)]
pub(crate) struct Args(String);

impl Args {
    pub(crate) fn str(mut self, k: &str, v: &str) -> Self {
        self.sep();
        push_json_string(&mut self.0, k);
        self.0.push(':');
        push_json_string(&mut self.0, v);
        self
    }
    pub(crate) fn raw(mut self, k: &str, v: &str) -> Self {
        self.sep();
        push_json_string(&mut self.0, k);
        self.0.push(':');
        self.0.push_str(v);
        self
    }
    fn sep(&mut self) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
    }
    pub(crate) fn done(mut self) -> String {
        if self.0.is_empty() {
            self.0.push('{');
        }
        self.0.push('}');
        self.0
    }
}

pub(crate) fn call(rng: &mut SmallRng, tool: &str, args: Args) -> Call {
    Call {
        id: call_id(rng),
        tool: tool.to_owned(),
        args: args.done(),
    }
}

pub(crate) fn login_call(rng: &mut SmallRng, app: &str, user_email: &str) -> Call {
    let pw = hex(rng, 12);
    call(
        rng,
        &format!("{app}__login"),
        Args::default()
            .str("username", user_email)
            .str("password", &pw),
    )
}

/// Number of task kinds (the last one is the bulk task).
pub(crate) const TASK_KINDS: usize = 12;
pub(crate) const BULK_TASK: usize = TASK_KINDS - 1;

pub(crate) fn build_task(rng: &mut SmallRng, kind: usize) -> Task {
    let mut steps = Vec::new();
    let (text, summary, apps): (String, String, Vec<&'static str>) = match kind {
        0 => {
            let src = title(rng);
            let dst = title(rng);
            let k = rng.random_range(1..4);
            let pid: u32 = rng.random_range(100..900);
            steps.push(call(
                rng,
                "spotify__show_playlist",
                Args::default().raw("playlist_id", &pid.to_string()),
            ));
            steps.push(call(
                rng,
                "spotify__create_playlist",
                Args::default().str("title", &dst),
            ));
            let new_pid = pid + rng.random_range(1..50);
            let base: u32 = rng.random_range(1000..9000);
            for i in 0..k {
                steps.push(call(
                    rng,
                    "spotify__add_song_to_playlist",
                    Args::default()
                        .raw("playlist_id", &new_pid.to_string())
                        .raw("song_id", &(base + i * 17).to_string()),
                ));
            }
            (
                format!("Add the {k} most played songs from my '{src}' playlist to a new playlist called '{dst}'."),
                format!("I created the playlist '{dst}' and added the {k} most played songs from '{src}' to it."),
                vec!["spotify"],
            )
        }
        1 => {
            let (name, email) = person(rng);
            let amount =
                rng.random_range(5..300) as f64 + [0.0, 0.5, 0.25, 0.99][rng.random_range(0..4)];
            let topic = TOPICS.choose(rng).unwrap_or(&"dinner");
            steps.push(call(
                rng,
                "venmo__search_users",
                Args::default().str("query", &name),
            ));
            steps.push(call(
                rng,
                "venmo__send_money",
                Args::default()
                    .str("receiver_email", &email)
                    .raw("amount", &format!("{amount:.2}"))
                    .str("description", topic),
            ));
            (
                format!("Send ${amount:.2} to {name} on Venmo for the {topic}."),
                format!(
                    "I sent ${amount:.2} to {name} ({email}) on Venmo with the note '{topic}'."
                ),
                vec!["venmo"],
            )
        }
        2 => {
            let month = MONTHS.choose(rng).unwrap_or(&"May");
            let n = rng.random_range(1..3);
            let amount = rng.random_range(20..120);
            steps.push(call(
                rng,
                "file_system__read_file",
                Args::default().str("path", "/home/user/documents/roommates.txt"),
            ));
            let mut names = Vec::new();
            for _ in 0..n {
                let (name, email) = person(rng);
                steps.push(call(
                    rng,
                    "venmo__search_users",
                    Args::default().str("query", &name),
                ));
                steps.push(call(
                    rng,
                    "venmo__request_money",
                    Args::default()
                        .str("user_email", &email)
                        .raw("amount", &format!("{amount}.00"))
                        .str("description", &format!("{month} utilities")),
                ));
                names.push(name);
            }
            (
                format!("Request ${amount} from each roommate listed in ~/documents/roommates.txt for the {month} utilities."),
                format!("I requested ${amount}.00 for the {month} utilities from {}.", names.join(", ")),
                vec!["file_system", "venmo"],
            )
        }
        3 => {
            let (name, _) = person(rng);
            let topic = TOPICS.choose(rng).unwrap_or(&"budget");
            let file = path(rng);
            let eid: u32 = rng.random_range(1000..99999);
            steps.push(call(
                rng,
                "gmail__list_emails",
                Args::default().str("label", "inbox").raw("page_index", "0"),
            ));
            steps.push(call(
                rng,
                "gmail__read_email",
                Args::default().raw("email_id", &eid.to_string()),
            ));
            let content = paragraph(rng, 2);
            steps.push(call(
                rng,
                "file_system__write_file",
                Args::default().str("path", &file).str("content", &content),
            ));
            (
                format!("Find the email from {name} about the {topic} and save its contents to {file}."),
                format!("I found {name}'s email about the {topic} (thread {eid}) and saved its contents to {file}."),
                vec!["gmail", "file_system"],
            )
        }
        4 => {
            let (name, _) = person(rng);
            let phone = format!(
                "+1-555-{:03}-{:04}",
                rng.random_range(100..999),
                rng.random_range(0..9999)
            );
            let hh = rng.random_range(5..9);
            steps.push(call(rng, "phone__show_alarms", Args::default()));
            steps.push(call(
                rng,
                "phone__search_contacts",
                Args::default().str("query", &name),
            ));
            steps.push(call(
                rng,
                "phone__send_text_message",
                Args::default()
                    .str("phone_number", &phone)
                    .str("message", &format!("My next alarm is set for {hh}:30 AM.")),
            ));
            (
                format!("Text {name} the time of my next alarm."),
                format!("I texted {name} at {phone} that your next alarm is at {hh}:30 AM."),
                vec!["phone"],
            )
        }
        5 => {
            let topic = TOPICS.choose(rng).unwrap_or(&"review");
            let d1 = date(rng);
            let d2 = date(rng);
            let ev: u32 = rng.random_range(100..5000);
            let (_, email) = person(rng);
            steps.push(call(
                rng,
                "calendar__list_events",
                Args::default().str("date", &d1),
            ));
            steps.push(call(
                rng,
                "calendar__delete_event",
                Args::default().raw("event_id", &ev.to_string()),
            ));
            steps.push(call(
                rng,
                "calendar__create_event",
                Args::default()
                    .str("title", topic)
                    .str("start", &format!("{d2}T10:00:00"))
                    .str("end", &format!("{d2}T11:00:00")),
            ));
            steps.push(call(
                rng,
                "gmail__send_email",
                Args::default()
                    .str("to", &email)
                    .str("subject", &format!("Rescheduled: {topic}"))
                    .str(
                        "body",
                        &format!("Hi, the {topic} moved from {d1} to {d2} at 10:00. See you then."),
                    ),
            ));
            (
                format!("Move my {topic} meeting on {d1} to {d2} at 10am and email the attendees."),
                format!("I moved the {topic} from {d1} to {d2} 10:00-11:00 and emailed {email} about the change."),
                vec!["calendar", "gmail"],
            )
        }
        6 => {
            let (artist, _) = person(rng);
            let pages = rng.random_range(2..4);
            for p in 0..pages {
                steps.push(call(
                    rng,
                    "spotify__show_liked_songs",
                    Args::default().raw("page_index", &p.to_string()),
                ));
            }
            let n = rng.random_range(1..12);
            (
                format!("How many songs in my liked songs are by {artist}?"),
                format!("You have {n} liked songs by {artist}."),
                vec!["spotify"],
            )
        }
        7 => {
            let month = MONTHS.choose(rng).unwrap_or(&"May");
            let file = format!("/home/user/bills/venmo_{}.md", month.to_lowercase());
            for p in 0..rng.random_range(1..3) {
                steps.push(call(
                    rng,
                    "venmo__show_transactions",
                    Args::default().raw("page_index", &p.to_string()),
                ));
            }
            let content = paragraph(rng, 3);
            steps.push(call(
                rng,
                "file_system__write_file",
                Args::default().str("path", &file).str("content", &content),
            ));
            (
                format!("Summarize my Venmo transactions from {month} into {file}."),
                format!("I wrote a summary of your {month} Venmo transactions to {file}."),
                vec!["venmo", "file_system"],
            )
        }
        8 => {
            let q = title(rng);
            let pid: u32 = rng.random_range(100..900);
            steps.push(call(
                rng,
                "spotify__search_songs",
                Args::default().str("query", &q).raw("page_index", "0"),
            ));
            steps.push(call(
                rng,
                "spotify__search_songs",
                Args::default().str("query", &q).raw("page_index", "1"),
            ));
            let sid: u32 = rng.random_range(1000..9000);
            steps.push(call(
                rng,
                "spotify__add_song_to_playlist",
                Args::default()
                    .raw("playlist_id", &pid.to_string())
                    .raw("song_id", &sid.to_string()),
            ));
            (
                format!(
                    "Find the song '{q}' and add the most popular version to my playlist {pid}."
                ),
                format!("I added the most played version of '{q}' (song {sid}) to playlist {pid}."),
                vec!["spotify"],
            )
        }
        9 => {
            let (name, email) = person(rng);
            let d = date(rng);
            let eid: u32 = rng.random_range(1000..99999);
            steps.push(call(
                rng,
                "gmail__list_emails",
                Args::default().str("label", "inbox").raw("page_index", "0"),
            ));
            steps.push(call(
                rng,
                "gmail__read_email",
                Args::default().raw("email_id", &eid.to_string()),
            ));
            steps.push(call(
                rng,
                "gmail__send_email",
                Args::default()
                    .str("to", &email)
                    .str("subject", "Re: plans")
                    .str("body", &format!("Hi {name}, I'll be there on {d}.")),
            ));
            (
                format!("Reply to the latest email from {name} saying I'll be there on {d}."),
                format!("I replied to {name}'s latest email (thread {eid}) confirming you'll be there on {d}."),
                vec!["gmail"],
            )
        }
        10 => {
            let file = path(rng);
            steps.push(call(
                rng,
                "file_system__read_file",
                Args::default().str("path", &file),
            ));
            let n = rng.random_range(2..4);
            for _ in 0..n {
                let d = date(rng);
                let t = TOPICS.choose(rng).unwrap_or(&"meeting");
                steps.push(call(
                    rng,
                    "calendar__create_event",
                    Args::default()
                        .str("title", t)
                        .str("start", &format!("{d}T09:00:00"))
                        .str("end", &format!("{d}T09:30:00")),
                ));
            }
            (
                format!("Create calendar events for each item in {file}."),
                format!("I created {n} calendar events from the items in {file}."),
                vec!["file_system", "calendar"],
            )
        }
        _ => {
            let dir = format!("/home/user/downloads/tmp_{}", rng.random_range(1..99));
            steps.push(call(
                rng,
                "file_system__list_directory",
                Args::default().str("path", &dir),
            ));
            let n = rng.random_range(24..70);
            for i in 0..n {
                let p = format!(
                    "{dir}/{}_{i:03}.{}",
                    WORDS.choose(rng).unwrap_or(&"tmp"),
                    EXTS.choose(rng).unwrap_or(&"txt")
                );
                steps.push(call(
                    rng,
                    "file_system__delete_file",
                    Args::default().str("path", &p),
                ));
            }
            (
                format!("Delete all files in {dir} that are older than 30 days."),
                format!("I deleted {n} files older than 30 days from {dir}."),
                vec!["file_system"],
            )
        }
    };
    Task {
        text,
        apps,
        steps,
        summary,
    }
}

/// A paragraph of plausible prose (n sentences).
pub(crate) fn paragraph(rng: &mut SmallRng, n: usize) -> String {
    const SENT: &[&str] = &[
        "Please review the attached notes before the next meeting",
        "The totals below include everything paid through the end of the month",
        "Let me know if any of the dates need to change",
        "We agreed to split the costs evenly between everyone on the list",
        "The venue confirmed the booking for twelve people",
        "I moved the older items to the archive folder to keep things tidy",
        "The receipts are grouped by category and sorted by date",
        "Remember to bring the signed copy of the agreement",
        "The playlist should be ready before the weekend trip",
        "Thanks again for organizing everything so quickly",
        "The draft includes the updated numbers from last week",
        "Parking is available on the north side of the building",
    ];
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(SENT.choose(rng).unwrap_or(&SENT[0]));
        s.push('.');
    }
    s
}

/// A successful (or, with `empty`, empty-handed) result for a tool call.
pub(crate) fn tool_result(rng: &mut SmallRng, call: &Call, empty: bool) -> String {
    let tool = call.tool.as_str();
    if tool.ends_with("__login") {
        return format!(
            "{{\"access_token\":\"eyJhbGciOiJIUzI1NiJ9.{}.{}\",\"token_type\":\"Bearer\"}}",
            hex(rng, 96),
            hex(rng, 43)
        );
    }
    if empty {
        return match tool {
            "file_system__read_file" => "{\"content\":\"\"}".to_owned(),
            _ => "[]".to_owned(),
        };
    }
    let mut s = String::new();
    match tool {
        "spotify__search_songs" | "spotify__show_liked_songs" | "spotify__show_playlist" => {
            s.push('[');
            let n = rng.random_range(3..8);
            for i in 0..n {
                if i > 0 {
                    s.push(',');
                }
                let (artist, _) = person(rng);
                s.push_str(&format!(
                    "{{\"song_id\":{},\"title\":\"{}\",\"album_id\":{},\"album_title\":\"{}\",\"duration\":{},\"artists\":[{{\"id\":{},\"name\":\"{}\"}}],\"liked\":{},\"play_count\":{},\"release_date\":\"{}T00:00:00\"}}",
                    rng.random_range(1000..9999),
                    title(rng),
                    rng.random_range(100..999),
                    title(rng),
                    rng.random_range(120..420),
                    rng.random_range(1..800),
                    artist,
                    rng.random_bool(0.5),
                    rng.random_range(0..5000),
                    date(rng)
                ));
            }
            s.push(']');
        }
        "venmo__search_users" | "phone__search_contacts" => {
            s.push('[');
            for i in 0..rng.random_range(1..4) {
                if i > 0 {
                    s.push(',');
                }
                let (name, email) = person(rng);
                s.push_str(&format!(
                    "{{\"first_name\":\"{}\",\"last_name\":\"{}\",\"email\":\"{email}\",\"phone_number\":\"+1-555-{:03}-{:04}\",\"registered_at\":\"{}T12:00:00\"}}",
                    name.split(' ').next().unwrap_or(""),
                    name.split(' ').nth(1).unwrap_or(""),
                    rng.random_range(100..999),
                    rng.random_range(0..9999),
                    date(rng)
                ));
            }
            s.push(']');
        }
        "venmo__show_transactions" => {
            s.push('[');
            for i in 0..rng.random_range(5..12) {
                if i > 0 {
                    s.push(',');
                }
                let (_, email) = person(rng);
                s.push_str(&format!(
                    "{{\"transaction_id\":{},\"amount\":{}.{:02},\"receiver_email\":\"{email}\",\"description\":\"{}\",\"created_at\":\"{}T{:02}:14:00\",\"private\":false}}",
                    rng.random_range(10000..99999),
                    rng.random_range(3..250),
                    rng.random_range(0..100),
                    TOPICS.choose(rng).unwrap_or(&"dinner"),
                    date(rng),
                    rng.random_range(0..24)
                ));
            }
            s.push(']');
        }
        "gmail__list_emails" => {
            s.push('[');
            for i in 0..rng.random_range(3..8) {
                if i > 0 {
                    s.push(',');
                }
                let (name, email) = person(rng);
                s.push_str(&format!(
                    "{{\"email_thread_id\":{},\"subject\":\"{}\",\"sender\":{{\"name\":\"{name}\",\"email\":\"{email}\"}},\"snippet\":\"{}\",\"received_at\":\"{}\",\"read\":{}}}",
                    rng.random_range(1000..99999),
                    TOPICS.choose(rng).unwrap_or(&"hello"),
                    paragraph(rng, 1),
                    date(rng),
                    rng.random_bool(0.6)
                ));
            }
            s.push(']');
        }
        "gmail__read_email" | "file_system__read_file" => {
            let n = rng.random_range(3..14);
            let body = paragraph(rng, n);
            let mut b = String::new();
            push_json_string(&mut b, &body);
            s.push_str(&format!(
                "{{\"content\":{b},\"size_bytes\":{}}}",
                body.len()
            ));
        }
        "file_system__list_directory" => {
            s.push('[');
            for i in 0..rng.random_range(4..14) {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&format!(
                    "{{\"path\":\"{}\",\"size\":{},\"modified_at\":\"{}T08:00:00\"}}",
                    path(rng),
                    rng.random_range(100..20_000_000),
                    date(rng)
                ));
            }
            s.push(']');
        }
        "phone__show_alarms" => {
            s.push_str(&format!(
                "[{{\"alarm_id\":{},\"time\":\"0{}:30\",\"repeat_days\":[\"monday\",\"tuesday\",\"wednesday\",\"thursday\",\"friday\"],\"enabled\":true}},{{\"alarm_id\":{},\"time\":\"09:00\",\"repeat_days\":[\"saturday\"],\"enabled\":false}}]",
                rng.random_range(1..99),
                rng.random_range(5..9),
                rng.random_range(100..199)
            ));
        }
        "calendar__list_events" => {
            s.push('[');
            for i in 0..rng.random_range(2..7) {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&format!(
                    "{{\"event_id\":{},\"title\":\"{}\",\"start\":\"{}T{:02}:00:00\",\"attendees\":{}}}",
                    rng.random_range(100..5000),
                    TOPICS.choose(rng).unwrap_or(&"sync"),
                    date(rng),
                    rng.random_range(8..18),
                    rng.random_range(1..9)
                ));
            }
            s.push(']');
        }
        "venmo__send_money" | "venmo__request_money" => {
            s.push_str(&format!(
                "{{\"message\":\"Sent money.\",\"transaction_id\":{}}}",
                rng.random_range(10000..99999)
            ));
        }
        "spotify__create_playlist" => {
            s.push_str(&format!(
                "{{\"message\":\"Playlist created.\",\"playlist_id\":{}}}",
                rng.random_range(100..999)
            ));
        }
        "calendar__create_event" => {
            s.push_str(&format!(
                "{{\"message\":\"Event created.\",\"event_id\":{}}}",
                rng.random_range(100..5000)
            ));
        }
        _ => s.push_str("{\"message\":\"Success.\"}"),
    }
    s
}

/// The JSON schema (OpenAI function-tool shape) of a declared tool.
pub(crate) fn tool_schema(t: &ToolDef, compact: bool) -> String {
    let mut s = String::from("{\"type\":\"function\",\"function\":{\"name\":");
    push_json_string(&mut s, t.name);
    if compact {
        s.push_str("}}");
        return s;
    }
    s.push_str(",\"description\":");
    push_json_string(&mut s, t.description);
    s.push_str(",\"parameters\":{\"type\":\"object\",\"properties\":{");
    for (i, (p, ty)) in t.params.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("\"{p}\":{{\"type\":\"{ty}\"}}"));
    }
    s.push_str("},\"required\":[");
    for (i, (p, _)) in t.params.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("\"{p}\""));
    }
    s.push_str("]}}}");
    s
}

pub(crate) const SYSTEM_PROMPT: &str = "You are {agent}, a personal assistant that completes tasks for your supervisor by calling the APIs of their apps.\n\
Rules:\n\
1. Pass arguments that match the documented parameters exactly. Do not invent APIs.\n\
2. Log in to an app before calling its other APIs.\n\
3. Paginated APIs: request pages until you have what you need; do not repeat a call whose result you already have.\n\
4. Only make the changes the supervisor asked for.\n\
5. When the task is complete, reply with a short summary of what you did.\n\
Available apps: {apps}. Today's date is 2026-04-21.";
