package cluster

import "strings"

// SlotCount is the number of hash slots a Redis Cluster divides its keys into.
const SlotCount = 16384

// Slot returns the hash slot of key as Redis Cluster computes it: CRC16
// (XMODEM) of the key modulo SlotCount. When the key contains a hash tag, only
// the tag is hashed, so that "{user1000}.following" and "{user1000}.followers"
// share a slot and may be used together in one multi-key command. The tag is
// what lies between the first '{' and the first '}' after it, and only counts
// when it is not empty; "{}x" and "x{" hash as a whole.
func Slot(key string) int {
	return int(crc16(hashTag(key)) & (SlotCount - 1))
}

// hashTag returns the part of key that decides its slot.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 { // no closing brace, or "{}"
		return key
	}
	return key[open+1 : open+1+end]
}

// crc16Table is the lookup table of CRC16-CCITT (XMODEM: polynomial 0x1021,
// initial value 0), the variant Redis uses for key slots.
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^s[i]]
	}
	return crc
}
