//! `showfloor viewer`: a terminal WebSocket viewer — prints every event as one JSON line and
//! sends what you type (a plain line is chat; a line starting with `{` is sent as is).

use futures_util::{SinkExt, StreamExt};
use std::process::ExitCode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args, Debug)]
pub struct ViewerArgs {
    /// Room id.
    pub room: String,
    /// Viewer token (from `showfloor ctl issue-token`).
    pub token: String,
    /// Server base URL.
    #[arg(long, default_value = "ws://127.0.0.1:7880", env = "SHOWFLOOR_WS")]
    pub server: String,
    /// Resume after this sequence number.
    #[arg(long)]
    pub last_seq: Option<u64>,
    /// Epoch of the welcome the `--last-seq` came from.
    #[arg(long)]
    pub epoch: Option<String>,
}

pub async fn run(args: ViewerArgs) -> ExitCode {
    let mut url = format!(
        "{}/ws/{}?token={}",
        args.server.trim_end_matches('/'),
        args.room,
        args.token
    );
    if let Some(s) = args.last_seq {
        url.push_str(&format!("&last_seq={s}"));
    }
    if let Some(e) = &args.epoch {
        url.push_str(&format!("&epoch={e}"));
    }
    let ws = match tokio_tungstenite::connect_async(url.as_str()).await {
        Ok((ws, _)) => ws,
        Err(e) => {
            eprintln!("viewer: cannot connect to {}: {e}", args.server);
            return ExitCode::from(69);
        }
    };
    let (mut sink, mut stream) = ws.split();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            m = stream.next() => match m {
                Some(Ok(Message::Text(t))) => println!("{}", t.as_str()),
                Some(Ok(Message::Close(c))) => {
                    match c {
                        Some(c) => eprintln!("viewer: closed by the server: {} {}", u16::from(c.code), c.reason),
                        None => eprintln!("viewer: closed by the server"),
                    }
                    return ExitCode::SUCCESS;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    eprintln!("viewer: connection error: {e}");
                    return ExitCode::FAILURE;
                }
                None => return ExitCode::SUCCESS,
            },
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(l)) if !l.trim().is_empty() => {
                    let text = if l.trim_start().starts_with('{') {
                        l
                    } else {
                        serde_json::json!({"type": "chat", "text": l}).to_string()
                    };
                    if sink.send(Message::text(text)).await.is_err() {
                        return ExitCode::FAILURE;
                    }
                }
                Ok(Some(_)) => {}
                _ => stdin_open = false,
            },
        }
    }
}
