// twilld --watch: a rewrite or a replacement of the config file is noticed once it
// settles; other files in the directory are not.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include "control/file_watch.h"

using namespace twill;

TEST_CASE("file watch: rewrites and renames of the file, not its neighbours", "[watch]") {
    namespace fs = std::filesystem;
    fs::path dir = fs::temp_directory_path() / ("twill-watch-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path file = dir / "node.yaml";
    std::ofstream(file) << "a\n";

    boost::asio::io_context io;
    int changes = 0;
    file_watch w(io, file.string(), [&] { ++changes; }, std::chrono::milliseconds(20));
    REQUIRE(w.start().empty());
    auto settle = [&] { io.run_for(std::chrono::milliseconds(150)); io.restart(); };

    std::ofstream(dir / "other.yaml") << "x\n";
    settle();
    CHECK(changes == 0);
    std::ofstream(file) << "b\n";  // rewritten in place: one change, however many events
    settle();
    CHECK(changes == 1);
    std::ofstream(dir / "node.yaml.tmp") << "c\n";
    fs::rename(dir / "node.yaml.tmp", file);  // replaced, as editors and config tools do
    settle();
    CHECK(changes == 2);
    fs::remove_all(dir);
}
