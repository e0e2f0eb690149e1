# The zone's view of the resident models, tested on its own with the clock
# driven by the test: see t/unit/resident_test.c.
use strict;
use warnings;
use FindBin;

# built against the nginx under test (make test passes its build folder)
my $bin = ($ENV{SEADRAGON_BUILD} || "$FindBin::Bin/../build") . "/resident-test";
unless (-x $bin) {
    print "1..0 # SKIP build/resident-test is not built: run make unit\n";
    exit 0;
}
exec $bin or die "cannot run $bin: $!";
