/**
 * Hard limits every codec checks before buffering (see docs/design/limits.md).
 */
export const Limits = {
  /** RFC 8803: Total Length is one byte of 32-bit words, so a Convert message is at most 1020 bytes. */
  convertMaxMessageBytes: 255 * 4,
  /**
   * SOCKS5 handshake budget: greeting (2 + 255) + RFC 1929 auth (3 + 255 + 255) + request
   * (6 + 1 + 255 + 2 … rounded up) ≈ 1.1 KB. Anything beyond it before the request completes is an attack.
   */
  socks5MaxHandshakeBytes: 1152,
  /** Application bytes held before the upstream connects (SOCKS pipelining, TFO payload). */
  earlyDataMaxBytes: 16 * 1024
} as const
