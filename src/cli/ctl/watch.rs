//! `showfloor ctl watch`: follows a room's host console stream, one line per event.

use std::process::ExitCode;

use super::{emit, json, status_exit, text, Client};
use crate::pb::RoomRef;

/// Prints every event of `room`'s `WatchRoom` stream as a text line, or with `json` as one
/// JSON object per line, until the stream ends, stdout closes or Ctrl-C.
pub(super) async fn run(c: &mut Client, room: String, json: bool) -> ExitCode {
    let mut stream = match c.watch_room(RoomRef { room_id: room }).await {
        Ok(resp) => resp.into_inner(),
        Err(status) => return status_exit(&status),
    };
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    let mut ctrl_c_armed = true;
    loop {
        tokio::select! {
            res = &mut ctrl_c, if ctrl_c_armed => match res {
                Ok(()) => return ExitCode::SUCCESS,
                Err(_) => ctrl_c_armed = false,
            },
            msg = stream.message() => match msg {
                Ok(Some(ev)) => {
                    let line = if json {
                        match json::event(&ev) {
                            Ok(line) => line,
                            Err(e) => return super::json_exit(&e),
                        }
                    } else {
                        format!("{}\n", text::event_line(&ev))
                    };
                    if emit(&line).is_err() {
                        return ExitCode::SUCCESS; // stdout closed
                    }
                }
                Ok(None) => return ExitCode::SUCCESS,
                Err(status) => return status_exit(&status),
            },
        }
    }
}
