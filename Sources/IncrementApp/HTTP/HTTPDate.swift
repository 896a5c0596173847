#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The `Date` header's value, RFC 9110's IMF-fixdate (`Thu, 03 Dec 2026 07:38:22 GMT`), formatted
/// at most once per second.
struct HTTPDateCache {
    private var second: time_t = -1
    private var formatted = ""

    /// The current time, formatted.
    mutating func now() -> String {
        let now = time(nil)
        if now != self.second {
            self.second = now
            self.formatted = Self.format(now)
        }
        return self.formatted
    }

    /// `seconds` since 1970, formatted.
    static func format(_ seconds: time_t) -> String {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func twoDigits(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(twoDigits(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(1900 + parts.tm_year) "
            + "\(twoDigits(parts.tm_hour)):\(twoDigits(parts.tm_min)):\(twoDigits(parts.tm_sec)) GMT"
    }
}
