// A port of containerd 1.6's filters package (scanner.go, parser.go,
// quote.go, filter.go). The scanner and parser follow the Go code step by
// step, quirks included, because containerd clients build filter strings for
// that implementation and we must accept, reject and match exactly the same
// strings, with the same error positions.
#include "snapshotter/filter.h"

#include <cstdint>
#include <string_view>
#include <utility>

#include <re2/re2.h>

#include "absl/status/status.h"

namespace ndocker {
namespace {

// Go's scanner mixes runes and negative token kinds in one int.
using Rune = int32_t;
constexpr Rune kEOF = -1;
constexpr Rune kQuoted = -2;
constexpr Rune kValue = -3;
constexpr Rune kField = -4;
constexpr Rune kSeparator = -5;
constexpr Rune kOperator = -6;
constexpr Rune kIllegal = -7;

constexpr Rune kRuneError = 0xFFFD;
constexpr Rune kMaxRune = 0x10FFFF;

// utf8.DecodeRuneInString: invalid or truncated sequences decode as
// (RuneError, 1), the end of input as (RuneError, 0).
std::pair<Rune, size_t> DecodeRune(std::string_view s, size_t i) {
  if (i >= s.size()) return {kRuneError, 0};
  auto byte = [&](size_t k) -> Rune {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : -1;
  };
  const Rune b0 = byte(0);
  if (b0 < 0x80) return {b0, 1};
  auto cont = [&](size_t k, Rune lo = 0x80, Rune hi = 0xBF) {
    const Rune b = byte(k);
    return b >= lo && b <= hi;
  };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (cont(1)) return {((b0 & 0x1F) << 6) | (byte(1) & 0x3F), 2};
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    // E0 excludes overlong forms, ED excludes UTF-16 surrogates.
    const Rune lo = b0 == 0xE0 ? 0xA0 : 0x80;
    const Rune hi = b0 == 0xED ? 0x9F : 0xBF;
    if (cont(1, lo, hi) && cont(2)) {
      return {((b0 & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F), 3};
    }
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    const Rune lo = b0 == 0xF0 ? 0x90 : 0x80;
    const Rune hi = b0 == 0xF4 ? 0x8F : 0xBF;
    if (cont(1, lo, hi) && cont(2) && cont(3)) {
      return {((b0 & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) |
                  (byte(3) & 0x3F),
              4};
    }
  }
  return {kRuneError, 1};
}

// utf8.EncodeRune (via string(rune)): anything that is not a valid scalar
// value, token kinds included, becomes U+FFFD.
void AppendRune(std::string& out, Rune r) {
  if (r < 0 || r > kMaxRune || (r >= 0xD800 && r <= 0xDFFF)) r = kRuneError;
  if (r < 0x80) {
    out += static_cast<char>(r);
  } else if (r < 0x800) {
    out += static_cast<char>(0xC0 | (r >> 6));
    out += static_cast<char>(0x80 | (r & 0x3F));
  } else if (r < 0x10000) {
    out += static_cast<char>(0xE0 | (r >> 12));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (r & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (r >> 18));
    out += static_cast<char>(0x80 | ((r >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (r & 0x3F));
  }
}

// unicode.IsSpace.
bool IsSpace(Rune r) {
  switch (r) {
    case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return r >= 0x2000 && r <= 0x200A;
  }
}

// unicode.IsGraphic (categories L, M, N, P, S, Zs). RE2 carries the Unicode
// tables, which saves us from shipping our own.
bool IsGraphic(Rune r) {
  if (r < 0) return false;
  if (r < 0x80) return r >= 0x20 && r <= 0x7E;
  static const RE2* const graphic = new RE2(R"([\p{L}\p{M}\p{N}\p{P}\p{S}\p{Zs}])");
  std::string encoded;
  AppendRune(encoded, r);
  return RE2::FullMatch(encoded, *graphic);
}

bool IsFieldRune(Rune r) {
  return r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9');
}
bool IsOperatorRune(Rune r) { return r == '=' || r == '!' || r == '~'; }
// Go's scanner has no single quotes or backquotes: those are plain value text.
bool IsQuoteRune(Rune r) { return r == '/' || r == '|' || r == '"'; }
bool IsSeparatorRune(Rune r) { return r == ',' || r == '.'; }
// Letters, digits, numbers and punctuation are all graphic, so Go's longer
// condition reduces to this.
bool IsValueRune(Rune r) { return r != ',' && !IsSpace(r) && IsGraphic(r); }

int DigitVal(Rune r) {
  if (r >= '0' && r <= '9') return r - '0';
  if (r >= 'a' && r <= 'f') return r - 'a' + 10;
  if (r >= 'A' && r <= 'F') return r - 'A' + 10;
  return 16;
}

struct Token {
  size_t pos;
  Rune kind;  // one of the k* kinds, or the offending rune itself
  std::string_view text;
};

// pos is where the current rune starts and ppos where it ends. Note that the
// first scanner error sticks: later errors in the same input do not replace
// it, and a peek can set it too.
class Scanner {
 public:
  explicit Scanner(std::string_view input) : input_(input) {}

  size_t ppos() const { return ppos_; }
  const std::string& err() const { return err_; }

  Rune Peek() {
    const size_t pos = pos_, ppos = ppos_;
    const Rune r = Next();
    pos_ = pos;
    ppos_ = ppos;
    return r;
  }

  Token Scan() {
    Rune ch = Next();
    size_t pos = pos_;
    for (;;) {
      if (ch == kEOF || ch == kIllegal) break;
      if (IsQuoteRune(ch)) {
        const Rune kind = ScanQuoted(ch) ? kQuoted : kIllegal;
        return {pos, kind, input_.substr(pos, ppos_ - pos)};
      }
      if (IsSeparatorRune(ch)) {
        value_ = false;
        return {pos, kSeparator, input_.substr(pos, ppos_ - pos)};
      }
      if (IsOperatorRune(ch)) {
        while (IsOperatorRune(Peek())) Next();
        value_ = true;
        return {pos, kOperator, input_.substr(pos, ppos_ - pos)};
      }
      if (IsSpace(ch)) {
        ch = Next();
        pos = pos_;
        continue;
      }
      // After an operator anything else starts a value, even a rune that
      // could not continue one (e.g. a control character).
      if (value_) {
        while (IsValueRune(Peek())) Next();
        value_ = false;
        return {pos, kValue, input_.substr(pos, ppos_ - pos)};
      }
      if (IsFieldRune(ch)) {
        while (IsFieldRune(Peek())) Next();
        return {pos, kField, input_.substr(pos, ppos_ - pos)};
      }
      break;
    }
    return {pos_, ch, {}};
  }

 private:
  Rune Next() {
    if (pos_ >= input_.size()) return kEOF;
    pos_ = ppos_;
    const auto [r, width] = DecodeRune(input_, ppos_);
    ppos_ += width;
    if (r == kRuneError) {
      // A literal U+FFFD is rejected too, as in Go.
      if (width > 0) {
        Error("rune error");
        return kIllegal;
      }
      return kEOF;
    }
    if (r == 0) {
      Error("unexpected null");
      return kIllegal;
    }
    return r;
  }

  bool ScanQuoted(Rune quote) {
    bool illegal = false;
    Rune ch = Next();
    while (ch != quote) {
      if (ch == '\n' || ch < 0) {
        Error("quoted literal not terminated");
        return false;
      }
      if (ch == '\\') {
        bool legal = false;
        ch = ScanEscape(quote, legal);
        if (!legal) illegal = true;
      } else {
        ch = Next();
      }
    }
    return !illegal;
  }

  // Returns the rune after the escape sequence. On an unknown escape it
  // returns the escaped rune itself, so `"\"` style input keeps scanning.
  Rune ScanEscape(Rune quote, bool& legal) {
    Rune ch = Next();
    switch (ch) {
      case 'a': case 'b': case 'f': case 'n': case 'r': case 't': case 'v': case '\\':
        legal = true;
        return Next();
      case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
        return ScanDigits(ch, 8, 3, legal);
      case 'x':
        return ScanDigits(Next(), 16, 2, legal);
      case 'u':
        return ScanDigits(Next(), 16, 4, legal);
      case 'U':
        return ScanDigits(Next(), 16, 8, legal);
      default:
        if (ch == quote) {
          legal = true;
          return Next();
        }
        Error("illegal escape sequence");
        legal = false;
        return ch;
    }
  }

  Rune ScanDigits(Rune ch, int base, int n, bool& legal) {
    for (; n > 0 && DigitVal(ch) < base; --n) ch = Next();
    legal = n == 0;
    if (!legal) Error("illegal numeric escape sequence");
    return ch;
  }

  void Error(std::string_view msg) {
    if (err_.empty()) err_ = msg;
  }

  std::string_view input_;
  size_t pos_ = 0;
  size_t ppos_ = 0;
  bool value_ = false;  // the next unclassified token is a value
  std::string err_;
};

// quote.go's unquote, for the quotes the scanner produces (", / and |; it
// never yields ' or `). The scanner has already validated most escapes;
// what is left to fail is \U beyond U+10FFFF and octal beyond \377.
std::optional<std::string> Unquote(std::string_view s) {
  if (s.size() < 2 || s.front() != s.back()) return std::nullopt;
  const char quote = s.front();
  s = s.substr(1, s.size() - 2);
  std::string out;
  while (!s.empty()) {
    const unsigned char c = s[0];
    if (c == static_cast<unsigned char>(quote) || c == '\n') return std::nullopt;
    if (c != '\\') {
      out += s[0];
      s.remove_prefix(1);
      continue;
    }
    if (s.size() < 2) return std::nullopt;
    const char esc = s[1];
    s.remove_prefix(2);
    switch (esc) {
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case '\\': out += '\\'; break;
      case 'x': case 'u': case 'U': {
        const size_t n = esc == 'x' ? 2 : esc == 'u' ? 4 : 8;
        if (s.size() < n) return std::nullopt;
        Rune v = 0;
        for (size_t j = 0; j < n; ++j) {
          const int d = DigitVal(static_cast<unsigned char>(s[j]));
          if (d >= 16) return std::nullopt;
          v = (v << 4) | d;
        }
        s.remove_prefix(n);
        if (esc == 'x') {
          out += static_cast<char>(v);  // a raw byte, possibly not UTF-8
        } else {
          if (v > kMaxRune) return std::nullopt;
          AppendRune(out, v);
        }
        break;
      }
      case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
        if (s.size() < 2) return std::nullopt;
        Rune v = esc - '0';
        for (size_t j = 0; j < 2; ++j) {
          const Rune d = s[j] - '0';
          if (d < 0 || d > 7) return std::nullopt;
          v = (v << 3) | d;
        }
        s.remove_prefix(2);
        if (v > 255) return std::nullopt;
        out += static_cast<char>(v);
        break;
      }
      case '\'': case '"': case '|': case '/':
        if (esc != quote) return std::nullopt;
        out += esc;
        break;
      default:
        return std::nullopt;
    }
  }
  return out;
}

// RE2 accepts \C (any byte), Go's regexp does not: such a pattern must not
// compile. Text between \Q and \E is literal and may contain it.
bool HasAnyByteEscape(std::string_view pattern) {
  for (size_t i = 0; i + 1 < pattern.size(); ++i) {
    if (pattern[i] != '\\') continue;
    const char c = pattern[++i];
    if (c == 'C') return true;
    if (c == 'Q') {
      const size_t end = pattern.find("\\E", i + 1);
      if (end == std::string_view::npos) return false;
      i = end + 1;
    }
  }
  return false;
}

// Go compiles with regexp.Compile and matches with MatchString: RE2
// syntax, unanchored search. A pattern Go rejects gives nullptr.
std::shared_ptr<const RE2> CompileRegexp(const std::string& pattern) {
  if (HasAnyByteEscape(pattern)) return nullptr;
  RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_shared<const RE2>(pattern, options);
  return re->ok() ? re : nullptr;
}

enum class Op { kPresent, kEqual, kNotEqual, kMatches };

struct Selector {
  std::vector<std::string> fieldpath;
  Op op = Op::kPresent;
  std::string value;
  // Null for a pattern Go's regexp would reject: containerd accepts such a
  // filter (it compiles only when matching) and the selector never matches.
  std::shared_ptr<const RE2> re;

  bool Match(const FieldLookup& lookup) const {
    const std::optional<std::string> field = lookup(fieldpath);
    // Go's adaptors return "" for an absent field, and only == and the
    // presence test look at presence: "name!=x" holds when name is absent.
    static const std::string kAbsent;
    const std::string& got = field ? *field : kAbsent;
    switch (op) {
      case Op::kPresent: return field.has_value();
      case Op::kEqual: return field && got == value;
      case Op::kNotEqual: return got != value;
      case Op::kMatches: return re && RE2::PartialMatch(got, *re);
    }
    return false;
  }
};

class Parser {
 public:
  explicit Parser(std::string_view input) : input_(input), scanner_(input) {}

  absl::StatusOr<std::vector<Selector>> Selectors() {
    std::vector<Selector> all;
    for (;;) {
      absl::StatusOr<Selector> s = ParseSelector();
      if (!s.ok()) return s.status();
      all.push_back(*std::move(s));
      const Rune next = scanner_.Peek();
      if (next == kEOF) return all;
      if (next != ',') {
        std::string text;
        AppendRune(text, next);
        return Error(scanner_.ppos(), "unexpected input: " + text);
      }
      scanner_.Scan();  // the ','
    }
  }

 private:
  absl::StatusOr<Selector> ParseSelector() {
    Selector s;
    absl::StatusOr<std::vector<std::string>> fieldpath = FieldPath();
    if (!fieldpath.ok()) return fieldpath.status();
    s.fieldpath = *std::move(fieldpath);

    const Rune next = scanner_.Peek();
    if (next == ',' || next == kEOF) return s;

    absl::StatusOr<Op> op = Operator();
    if (!op.ok()) return op.status();
    s.op = *op;

    absl::StatusOr<std::string> value = Value(/*allow_alt_quotes=*/s.op == Op::kMatches);
    if (!value.ok()) return value.status();
    s.value = *std::move(value);

    if (s.op == Op::kMatches) s.re = CompileRegexp(s.value);
    return s;
  }

  absl::StatusOr<std::vector<std::string>> FieldPath() {
    std::vector<std::string> path;
    for (;;) {
      absl::StatusOr<std::string> field = Field();
      if (!field.ok()) return field.status();
      path.push_back(*std::move(field));
      // Anything but '.' ends the path; the caller judges what follows.
      if (scanner_.Peek() != '.') return path;
      scanner_.Scan();
    }
  }

  absl::StatusOr<std::string> Field() {
    const Token t = scanner_.Scan();
    switch (t.kind) {
      case kField: return std::string(t.text);
      case kQuoted: return UnquoteAt(t, /*allow_alt_quotes=*/false);
      case kIllegal: return Error(t.pos, scanner_.err());
      default: return Error(t.pos, "expected field or quoted");
    }
  }

  absl::StatusOr<Op> Operator() {
    const Token t = scanner_.Scan();
    switch (t.kind) {
      case kOperator:
        if (t.text == "==") return Op::kEqual;
        if (t.text == "!=") return Op::kNotEqual;
        if (t.text == "~=") return Op::kMatches;
        return Error(t.pos, "unsupported operator \"" + std::string(t.text) + "\"");
      case kIllegal: return Error(t.pos, scanner_.err());
      default: return Error(t.pos, R"(expected an operator ("=="|"!="|"~="))");
    }
  }

  absl::StatusOr<std::string> Value(bool allow_alt_quotes) {
    const Token t = scanner_.Scan();
    switch (t.kind) {
      case kValue: case kField: return std::string(t.text);
      case kQuoted: return UnquoteAt(t, allow_alt_quotes);
      case kIllegal: return Error(t.pos, scanner_.err());
      default: return Error(t.pos, "expected value or quoted");
    }
  }

  // The scanner treats / and | as quotes everywhere (hence `labels.a/b` is
  // an unterminated quote), but only a regexp value may actually use them.
  absl::StatusOr<std::string> UnquoteAt(const Token& t, bool allow_alt_quotes) {
    if (!allow_alt_quotes && t.text[0] != '"') return Error(t.pos, "invalid quote encountered");
    std::optional<std::string> s = Unquote(t.text);
    if (!s) return Error(t.pos, "unquoting failed: quote syntax error");
    return *std::move(s);
  }

  // containerd's message: the input with the offending byte marked, e.g.
  // "filters: parse error: [name >|=|< x]: unsupported operator \"=\"".
  absl::Status Error(size_t pos, const std::string& msg) const {
    std::string message = "filters: parse error: [";
    if (pos < input_.size()) {
      message.append(input_.substr(0, pos));
      message.append(" >|").append(input_.substr(pos, 1)).append("|< ");
      message.append(input_.substr(pos + 1));
    } else {
      message.append(input_);
    }
    message.append("]: ").append(msg);
    return absl::InvalidArgumentError(message);
  }

  std::string_view input_;
  Scanner scanner_;
};

}  // namespace

// Alternatives are ORed, the selectors of one alternative ANDed.
struct Filter::Node {
  bool always = false;  // an empty filter string matches everything
  std::vector<std::vector<Selector>> any;
};

Filter::Filter(std::shared_ptr<const Node> root) : root_(std::move(root)) {}
Filter::Filter(Filter&&) noexcept = default;
Filter& Filter::operator=(Filter&&) noexcept = default;
Filter::~Filter() = default;

absl::StatusOr<Filter> Filter::ParseAll(const std::vector<std::string>& filters) {
  auto root = std::make_shared<Node>();
  root->always = filters.empty();
  // Every string is parsed, so an error anywhere fails the whole list even
  // when an empty string has already made it match everything.
  for (const std::string& s : filters) {
    if (s.empty()) {
      root->always = true;
      continue;
    }
    absl::StatusOr<std::vector<Selector>> selectors = Parser(s).Selectors();
    if (!selectors.ok()) return selectors.status();
    root->any.push_back(*std::move(selectors));
  }
  return Filter(std::move(root));
}

bool Filter::Match(const FieldLookup& lookup) const {
  if (!root_ || root_->always) return true;
  for (const std::vector<Selector>& all : root_->any) {
    bool ok = true;
    for (const Selector& s : all) {
      if (!s.Match(lookup)) {
        ok = false;
        break;
      }
    }
    if (ok) return true;
  }
  return false;
}

}  // namespace ndocker
