//! The monitor's [`Action`]s as RouterOS API commands (built by
//! [`crate::commands`]).

use crate::commands;
use crate::event::Service;
use crate::monitor::Action;
use crate::proto::Command;

pub fn command(action: &Action) -> Command {
    match action {
        Action::SetComment { id, comment, .. } => {
            commands::set_hotspot_comment(id, &comment.render())
        }
        Action::DisableUser { id, .. } => commands::disable_hotspot_user(id),
        Action::RemoveUser { id, .. } => commands::remove_user(Service::Hotspot, id),
        Action::LockMac { id, mac, .. } => commands::set_hotspot_mac(id, *mac),
        Action::Kick { active_id, .. } => commands::kick(Service::Hotspot, active_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::CommentText;
    use crate::name::{Id, Name};

    #[test]
    fn set_comment_keeps_bytes_and_formats_id() {
        let cmd = command(&Action::SetComment {
            id: Id(0x1a),
            user: Name::new(b"u"),
            comment: CommentText::Bytes(Name::new(b"caf\xe9")),
        });
        assert_eq!(cmd.path(), b"/ip/hotspot/user/set");
        assert_eq!(cmd.words()[1], b"=.id=*1A");
        assert_eq!(cmd.words()[2], b"=comment=caf\xe9");
    }

    #[test]
    fn lock_mac_sets_mac_address() {
        let cmd = command(&Action::LockMac {
            id: Id(0x2),
            user: Name::new(b"u"),
            mac: crate::name::Mac([0xaa, 0xbb, 0xcc, 0, 0x11, 0x22]),
        });
        assert_eq!(cmd.path(), b"/ip/hotspot/user/set");
        assert_eq!(cmd.words()[1], b"=.id=*2");
        assert_eq!(cmd.words()[2], b"=mac-address=AA:BB:CC:00:11:22");
    }
}
