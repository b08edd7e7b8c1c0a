// Round trips against the real NumPy (Debian python3-numpy, installed by scripts/setup).
#include <gtest/gtest.h>

#include "mess/npy.hpp"
#include "support/support.hpp"

using namespace mess;

static test::CommandResult python(const std::string& code) {
    return test::run_command(std::string(MESS_PYTHON) + " -c " + test::quote(code) + " 2>&1");
}

TEST(NumpyRoundTrip, NumpyLoadsWhatMessWrites) {
    test::TempDir dir;
    std::vector<float> f(2 * 13 * 5);
    for (std::size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(i) * 0.5f - 3.0f;
    write_npy(dir / "emb.npy", NpyArray::from(f, {2, 13, 5}));
    write_npy(dir / "half.npy", NpyArray::float16_from(f, {130}));
    std::vector<std::int64_t> l = {1, -2, 3};
    write_npy(dir / "l.npy", NpyArray::from(l, {3}));
    write_npz(dir / "t.npz", {{"rhythm/tempo", NpyArray::from(f, {130})}, {"ids", NpyArray::from(l, {3})}}, true);
    auto r = python("import numpy as np, sys\n"
                    "d = sys.argv[1] if len(sys.argv) > 1 else '" + dir.path().string() + "'\n"
                    "a = np.load(d + '/emb.npy'); assert a.dtype == np.float32 and a.shape == (2, 13, 5), a.shape\n"
                    "assert np.array_equal(a.ravel(), np.arange(130, dtype=np.float32) * 0.5 - 3)\n"
                    "h = np.load(d + '/half.npy'); assert h.dtype == np.float16\n"
                    "assert np.array_equal(h.astype(np.float32), a.ravel())\n"
                    "assert np.load(d + '/l.npy').tolist() == [1, -2, 3]\n"
                    "z = np.load(d + '/t.npz'); assert sorted(z.files) == ['ids', 'rhythm/tempo'], z.files\n"
                    "assert np.array_equal(z['rhythm/tempo'], a.ravel())\n"
                    "print('ok')\n");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("ok"), std::string::npos) << r.out;
}

TEST(NumpyRoundTrip, MessLoadsWhatNumpyWrites) {
    test::TempDir dir;
    auto r = python("import numpy as np\n"
                    "d = '" + dir.path().string() + "'\n"
                    "np.save(d + '/a.npy', np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4))\n"
                    "np.save(d + '/b.npy', np.arange(5, dtype=np.int32))\n"
                    "np.save(d + '/c.npy', np.array([0.5, 2.0], dtype=np.float16))\n"
                    "np.save(d + '/big.npy', np.zeros((3, 70000), dtype=np.float64)[:, :2].copy())\n"
                    "np.savez_compressed(d + '/z.npz', x=np.ones(7, dtype=np.float32), y=np.arange(3))\n"
                    "with open(d + '/v2.npy', 'wb') as f: np.lib.format.write_array(f, np.arange(4, dtype=np.int64), version=(2, 0))\n");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    NpyArray a = read_npy(dir / "a.npy");
    EXPECT_EQ(a.describe(), "float32 [2, 3, 4]");
    EXPECT_FLOAT_EQ(a.view<float>()[0], -1.0f);
    EXPECT_FLOAT_EQ(a.view<float>()[23], 1.0f);
    EXPECT_EQ(read_npy(dir / "b.npy").view<std::int32_t>()[4], 4);
    EXPECT_EQ(read_npy(dir / "c.npy").to_float32()[1], 2.0f);
    EXPECT_EQ(read_npy(dir / "big.npy").describe(), "float64 [3, 2]");
    EXPECT_EQ(read_npy(dir / "v2.npy").view<std::int64_t>()[3], 3);
    NpzMembers z = read_npz(dir / "z.npz");
    EXPECT_EQ(z.at("x").count(), 7u);
    EXPECT_EQ(z.at("y").view<std::int64_t>()[2], 2);
}
