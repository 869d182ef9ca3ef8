// Library version.
#pragma once

#define FTP_VERSION_MAJOR 0
#define FTP_VERSION_MINOR 1
#define FTP_VERSION_PATCH 0

namespace ftp {
/// "major.minor.patch"
inline constexpr const char* kVersion = "0.1.0";
}  // namespace ftp
