package wal

import "encoding/binary"

// Key layout. Every key starts with a one-byte keyspace prefix followed by
// keySep. The raft keyspace is per Raft group:
//
//	r/<group:2 BE>/l/<index:8 BE>   raft log entry
//	r/<group:2 BE>/s/<key>          raft stable store
const (
	keySep byte = '/'

	prefixRaft byte = 'r' // keyspace: raft log and stable store, per group

	raftTagLog    byte = 'l' // r/<group>/l/...
	raftTagStable byte = 's' // r/<group>/s/...
)

const raftSubPrefixLen = 7 // 'r' '/' g g '/' tag '/'

// raftSubPrefix returns r/<group>/<tag>/.
func raftSubPrefix(group uint16, tag byte, extra int) []byte {
	k := make([]byte, raftSubPrefixLen, raftSubPrefixLen+extra)
	k[0] = prefixRaft
	k[1] = keySep
	binary.BigEndian.PutUint16(k[2:4], group)
	k[4] = keySep
	k[5] = tag
	k[6] = keySep
	return k
}

// raftLogPrefix returns r/<group>/l/.
func raftLogPrefix(group uint16) []byte { return raftSubPrefix(group, raftTagLog, 0) }

// raftLogKey returns r/<group>/l/<index BE>.
func raftLogKey(group uint16, index uint64) []byte {
	return binary.BigEndian.AppendUint64(raftSubPrefix(group, raftTagLog, 8), index)
}

// raftLogIndex extracts the index from a raft log key of any group.
func raftLogIndex(key []byte) (uint64, bool) {
	if len(key) != raftSubPrefixLen+8 || key[0] != prefixRaft || key[5] != raftTagLog {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[raftSubPrefixLen:]), true
}

// raftStableKey returns r/<group>/s/<key>.
func raftStableKey(group uint16, key []byte) []byte {
	return append(raftSubPrefix(group, raftTagStable, len(key)), key...)
}

// keyPrefixEnd returns the smallest key greater than every key with the
// given prefix, for use as an exclusive upper bound. nil means unbounded.
func keyPrefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
