//! The monitor's [`Action`]s as RouterOS API commands.

use crate::monitor::Action;
use crate::name::Id;
use crate::proto::Command;

pub fn command(action: &Action) -> Command {
    let id = |id: &Id| id.to_string();
    match action {
        Action::SetComment { id: i, comment, .. } => Command::new("/ip/hotspot/user/set")
            .attr(".id", id(i))
            .attr("comment", comment.render()),
        Action::DisableUser { id: i, .. } => {
            Command::new("/ip/hotspot/user/disable").attr(".id", id(i))
        }
        Action::RemoveUser { id: i, .. } => {
            Command::new("/ip/hotspot/user/remove").attr(".id", id(i))
        }
        Action::LockMac { id: i, mac, .. } => Command::new("/ip/hotspot/user/set")
            .attr(".id", id(i))
            .attr("mac-address", mac.to_string()),
        Action::Kick { active_id, .. } => {
            Command::new("/ip/hotspot/active/remove").attr(".id", id(active_id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::CommentText;
    use crate::name::Name;

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
