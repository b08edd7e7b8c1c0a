#include "torch_pickle.hpp"

#include <cstring>
#include <map>
#include <memory>
#include <variant>

#include "mess/util.hpp"

namespace mess::model_detail {
namespace {

// Values the restricted machine can hold. Nothing here can run code.
struct Value;
using ValuePtr = std::shared_ptr<Value>;
struct Global { std::string module, name; };
struct Mark {};
struct None {};
struct Tuple { std::vector<ValuePtr> items; };
struct Dict { std::vector<std::pair<ValuePtr, ValuePtr>> items; };
struct Storage { std::string dtype, key; std::int64_t numel = 0; };
struct TensorRef { Storage storage; std::int64_t offset = 0; std::vector<std::int64_t> shape, stride; };
struct Value {
    std::variant<None, bool, std::int64_t, double, std::string, Tuple, Dict, Global, Storage, TensorRef, Mark> v;
};

template <class T> ValuePtr make(T x) { return std::make_shared<Value>(Value{std::move(x)}); }

// The only globals a state dict needs.
const std::map<std::string, std::string>& storage_dtypes() {
    static const std::map<std::string, std::string> m = {
        {"FloatStorage", "F32"}, {"HalfStorage", "F16"}, {"BFloat16Storage", "BF16"}, {"DoubleStorage", "F64"}};
    return m;
}

bool allowed_global(const Global& g) {
    if (g.module == "collections" && g.name == "OrderedDict") return true;
    if (g.module == "torch._utils" && (g.name == "_rebuild_tensor_v2" || g.name == "_rebuild_parameter")) return true;
    if (g.module == "torch" && storage_dtypes().count(g.name)) return true;
    return false;
}

class Machine {
public:
    Machine(std::string_view data, std::string name) : d_(data), name_(std::move(name)) {}

    ValuePtr run() {
        while (true) {
            if (pos_ >= d_.size()) fail("ends without STOP (truncated pickle)");
            auto op = static_cast<unsigned char>(d_[pos_++]);
            switch (op) {
                case 0x80: u8(); break;                                      // PROTO
                case 0x95: take(8); break;                                   // FRAME (protocol 4+)
                case '.': return pop();                                      // STOP
                case '(': push(make(Mark{})); break;                         // MARK
                case ')': push(make(Tuple{})); break;                        // EMPTY_TUPLE
                case '}': push(make(Dict{})); break;                         // EMPTY_DICT
                case 'N': push(make(None{})); break;                         // NONE
                case 0x88: push(make(true)); break;                          // NEWTRUE
                case 0x89: push(make(false)); break;                         // NEWFALSE
                case 'K': push(make(static_cast<std::int64_t>(u8()))); break;  // BININT1
                case 'M': push(make(static_cast<std::int64_t>(le(2)))); break; // BININT2
                case 'J': push(make(static_cast<std::int64_t>(static_cast<std::int32_t>(le(4))))); break;  // BININT
                case 0x8a: push(make(long1())); break;                       // LONG1
                case 'G': push(make(binfloat())); break;                     // BINFLOAT
                case 'X': push(make(std::string(take(le(4))))); break;       // BINUNICODE
                case 0x8c: push(make(std::string(take(u8())))); break;       // SHORT_BINUNICODE
                case 'c': global(); break;                                   // GLOBAL
                case 'q': memo_[u8()] = top(); break;                        // BINPUT
                case 'r': memo_[le(4)] = top(); break;                       // LONG_BINPUT
                case 0x94: memo_[memo_.size()] = top(); break;               // MEMOIZE
                case 'h': push(memo(u8())); break;                           // BINGET
                case 'j': push(memo(le(4))); break;                          // LONG_BINGET
                case 't': push(make(Tuple{pop_to_mark()})); break;           // TUPLE
                case 0x85: tuple_n(1); break;                                // TUPLE1
                case 0x86: tuple_n(2); break;                                // TUPLE2
                case 0x87: tuple_n(3); break;                                // TUPLE3
                case 'Q': persistent_id(); break;                            // BINPERSID
                case 'R': reduce(); break;                                   // REDUCE
                case 's': setitems(2); break;                                // SETITEM
                case 'u': setitems(-1); break;                               // SETITEMS
                case 'b': build(); break;                                    // BUILD
                default: fail(fmt::format("opcode 0x{:02x} at byte {} is not allowed in a state dict", op, pos_ - 1));
            }
        }
    }

private:
    [[noreturn]] void fail(const std::string& why) const { throw_input("{}: refused pickle: {}", name_, why); }

    std::string_view take(std::size_t n) {
        if (n > d_.size() - pos_) fail("truncated pickle");
        auto s = d_.substr(pos_, n);
        pos_ += n;
        return s;
    }
    std::size_t u8() { return static_cast<unsigned char>(take(1)[0]); }
    std::uint64_t le(int n) {
        auto s = take(static_cast<std::size_t>(n));
        std::uint64_t v = 0;
        for (int i = n - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(s[static_cast<std::size_t>(i)]);
        return v;
    }
    std::int64_t long1() {
        std::size_t n = u8();
        if (n > 8) fail("integer too large");
        auto s = take(n);
        std::uint64_t v = 0;
        for (std::size_t i = n; i-- > 0;) v = v << 8 | static_cast<unsigned char>(s[i]);
        if (n > 0 && n < 8 && (static_cast<unsigned char>(s[n - 1]) & 0x80)) v |= ~0ULL << (8 * n);  // sign extend
        return static_cast<std::int64_t>(v);
    }
    double binfloat() {
        auto s = take(8);
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < 8; ++i) v = v << 8 | static_cast<unsigned char>(s[i]);  // big endian
        double d;
        std::memcpy(&d, &v, 8);
        return d;
    }
    std::string line() {
        auto end = d_.find('\n', pos_);
        if (end == std::string_view::npos) fail("truncated GLOBAL");
        std::string s(d_.substr(pos_, end - pos_));
        pos_ = end + 1;
        return s;
    }
    void push(ValuePtr v) { stack_.push_back(std::move(v)); }
    ValuePtr top() {
        if (stack_.empty()) fail("stack underflow");
        return stack_.back();
    }
    ValuePtr pop() {
        ValuePtr v = top();
        stack_.pop_back();
        return v;
    }
    ValuePtr memo(std::uint64_t i) {
        auto it = memo_.find(i);
        if (it == memo_.end()) fail(fmt::format("memo entry {} used before it was set", i));
        return it->second;
    }
    std::vector<ValuePtr> pop_to_mark() {
        std::vector<ValuePtr> items;
        while (true) {
            ValuePtr v = pop();
            if (std::holds_alternative<Mark>(v->v)) break;
            items.push_back(v);
        }
        return {items.rbegin(), items.rend()};
    }
    void tuple_n(int n) {
        std::vector<ValuePtr> items(static_cast<std::size_t>(n));
        for (int i = n - 1; i >= 0; --i) items[static_cast<std::size_t>(i)] = pop();
        push(make(Tuple{std::move(items)}));
    }
    void global() {
        Global g{line(), ""};
        g.name = line();
        if (!allowed_global(g)) fail(fmt::format("forbidden global '{}.{}' (only tensors and OrderedDict are allowed)", g.module, g.name));
        push(make(g));
    }
    template <class T> const T& as(const ValuePtr& v, const char* what) const {
        if (auto* p = std::get_if<T>(&v->v)) return *p;
        fail(fmt::format("expected {}", what));
    }
    std::int64_t as_int(const ValuePtr& v) const { return as<std::int64_t>(v, "an integer"); }
    std::vector<std::int64_t> as_ints(const ValuePtr& v) const {
        std::vector<std::int64_t> out;
        for (const auto& x : as<Tuple>(v, "a tuple of integers").items) out.push_back(as_int(x));
        return out;
    }
    void persistent_id() {
        // ('storage', <torch.XStorage>, key, location, numel)
        const ValuePtr pid = pop();  // keep it alive while references into it are used
        const auto& t = as<Tuple>(pid, "a storage persistent id tuple").items;
        if (t.size() != 5 || as<std::string>(t[0], "'storage'") != "storage") fail("unexpected persistent id");
        const auto& g = as<Global>(t[1], "a storage class");
        auto it = storage_dtypes().find(g.name);
        if (g.module != "torch" || it == storage_dtypes().end()) fail(fmt::format("unsupported storage class {}.{}", g.module, g.name));
        Storage s{it->second, as<std::string>(t[2], "a storage key"), as_int(t[4])};
        if (s.key.empty() || s.key.find('/') != std::string::npos || s.key.find("..") != std::string::npos)
            fail(fmt::format("invalid storage key '{}'", s.key));
        push(make(s));
    }
    void reduce() {
        const ValuePtr args = pop();
        const ValuePtr callable = pop();
        const auto& g = as<Global>(callable, "a callable");
        const auto& a = as<Tuple>(args, "an argument tuple").items;
        if (g.module == "collections" && g.name == "OrderedDict") {
            if (!a.empty()) fail("OrderedDict with arguments");
            push(make(Dict{}));
        } else if (g.name == "_rebuild_tensor_v2") {
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            if (a.size() < 6) fail("_rebuild_tensor_v2 with too few arguments");
            TensorRef t{as<Storage>(a[0], "a storage"), as_int(a[1]), as_ints(a[2]), as_ints(a[3])};
            if (t.shape.size() != t.stride.size()) fail("tensor size and stride differ in rank");
            push(make(t));
        } else if (g.name == "_rebuild_parameter") {
            if (a.empty()) fail("_rebuild_parameter without a tensor");
            push(make(as<TensorRef>(a[0], "a tensor")));
        } else {
            fail(fmt::format("cannot call {}.{}", g.module, g.name));
        }
    }
    void setitems(int n) {
        std::vector<ValuePtr> items;
        if (n < 0) items = pop_to_mark();
        else { ValuePtr v = pop(); ValuePtr k = pop(); items = {k, v}; }
        if (items.size() % 2) fail("odd number of items for SETITEMS");
        auto& dict = const_cast<Dict&>(as<Dict>(top(), "a dict"));
        for (std::size_t i = 0; i < items.size(); i += 2) dict.items.emplace_back(items[i], items[i + 1]);
    }
    void build() {
        pop();  // the state of an OrderedDict is its _metadata attribute: not needed
        as<Dict>(top(), "a dict to BUILD");
    }

    std::string_view d_;
    std::string name_;
    std::size_t pos_ = 0;
    std::vector<ValuePtr> stack_;
    std::map<std::uint64_t, ValuePtr> memo_;
};

}  // namespace

std::vector<PickledTensor> parse_state_dict_pickle(std::string_view pickle, const std::string& name) {
    ValuePtr root = Machine(pickle, name).run();
    const auto* dict = std::get_if<Dict>(&root->v);
    if (!dict) throw_input("{}: the pickle does not hold a state dict", name);
    std::vector<PickledTensor> out;
    for (const auto& [k, v] : dict->items) {
        const auto* key = std::get_if<std::string>(&k->v);
        if (!key) throw_input("{}: state dict key is not a string", name);
        const auto* t = std::get_if<TensorRef>(&v->v);
        if (!t) throw_input("{}: state dict entry '{}' is not a tensor", name, *key);
        out.push_back({*key, t->storage.key, t->storage.dtype, t->storage.numel, t->offset, t->shape, t->stride});
    }
    return out;
}

namespace {
void put_u32(std::string& s, std::uint32_t v) { for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff); }
void put_int(std::string& s, std::int64_t v) {
    if (v >= 0 && v < 256) { s += 'K'; s += static_cast<char>(v); }
    else if (v >= 0 && v < 65536) { s += 'M'; s += static_cast<char>(v & 0xff); s += static_cast<char>(v >> 8); }
    else if (v >= INT32_MIN && v <= INT32_MAX) { s += 'J'; put_u32(s, static_cast<std::uint32_t>(v)); }
    else { s += '\x8a'; s += '\x08'; for (int i = 0; i < 8; ++i) s += static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff); }
}
void put_str(std::string& s, const std::string& v) { s += 'X'; put_u32(s, static_cast<std::uint32_t>(v.size())); s += v; }
void put_ints(std::string& s, const std::vector<std::int64_t>& v) {
    s += '(';
    for (auto x : v) put_int(s, x);
    s += 't';
}
}  // namespace

std::string write_state_dict_pickle(const std::vector<std::string>& names,
                                    const std::vector<std::vector<std::int64_t>>& shapes) {
    std::string s = "\x80\x02";
    s += "ccollections\nOrderedDict\n";
    s += 'q';
    s += '\0';  // BINPUT 0: memo slot 0 holds the OrderedDict class
    s += ")R";
    s += '(';
    for (std::size_t i = 0; i < names.size(); ++i) {
        const auto& shape = shapes[i];
        std::vector<std::int64_t> stride(shape.size(), 1);
        std::int64_t numel = 1;
        for (std::size_t d = shape.size(); d-- > 0;) {
            stride[d] = numel;
            numel *= shape[d];
        }
        put_str(s, names[i]);
        s += "ctorch._utils\n_rebuild_tensor_v2\n";
        s += '(';
        s += "(";
        put_str(s, "storage");
        s += "ctorch\nFloatStorage\n";
        put_str(s, std::to_string(i));
        put_str(s, "cpu");
        put_int(s, numel);
        s += "tQ";
        put_int(s, 0);
        put_ints(s, shape);
        put_ints(s, stride);
        s += '\x89';
        s += 'h';
        s += '\0';  // BINGET 0, (), REDUCE: collections.OrderedDict() for the backward hooks
        s += ")R";
        s += "tR";
    }
    s += "u.";
    return s;
}

}  // namespace mess::model_detail
