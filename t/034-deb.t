# make deb (scripts/seadragon-deb, scripts/debian/): the packages are built
# with debhelper, installed into this machine with dpkg -i next to Debian's
# nginx, accepted by nginx -t with the example configuration, and removed
# with dpkg -r and --purge, leaving nothing behind.  As root only, and only
# where no Seadragon package is installed already (it is not this test's to
# replace).
use strict;
use warnings;
use FindBin;
use Test::More;
use File::Temp ();

my $root = "$FindBin::Bin/..";
my $nginx = '/usr/sbin/nginx';   # the packages are for Debian's nginx

plan skip_all => 'dpkg -i needs root' if $> != 0;
plan skip_all => 'the packages are built against Debian\'s nginx-dev, for its nginx'
    if $ENV{TEST_NGINX_BINARY} && $ENV{TEST_NGINX_BINARY} ne $nginx;
plan skip_all => 'nginx is under valgrind: this test runs no nginx of its own'
    if $ENV{TEST_NGINX_USE_VALGRIND};
for my $pkg (qw(libnginx-mod-http-seadragon seadragon-common)) {
    my $status = `dpkg-query -W -f='\${Status}' $pkg 2>/dev/null`;
    plan skip_all => "$pkg is installed on this machine ($status)"
        if $status =~ /installed|unpacked|config-files/ && $status !~ /not-installed/;
}

sub slurp { my ($f) = @_; open my $fh, '<', $f or die "$f: $!"; local $/; scalar <$fh> }
sub spew { my ($f, $c) = @_; open my $fh, '>', $f or die "$f: $!"; print $fh $c; close $fh }
sub run { my $out = `$_[0] 2>&1`; return ($? >> 8, $out) }

my $tmp = File::Temp->newdir();
my $build = "$tmp/build";

my ($status, $out) = run("make -s -C '$root' deb BUILD='$build'");
is($status, 0, 'make deb succeeds') or diag($out);
my ($version) = slurp("$root/Makefile") =~ /^VERSION := (\S+)$/m;
my $arch = `dpkg --print-architecture`; chomp $arch;
my $module_deb = "$build/libnginx-mod-http-seadragon_${version}_$arch.deb";
my $common_deb = "$build/seadragon-common_${version}_$arch.deb";
ok(-f $module_deb, "built libnginx-mod-http-seadragon_${version}_$arch.deb");
ok(-f $common_deb, "built seadragon-common_${version}_$arch.deb");

# the exact ABI of the nginx the module was built for, as Debian's nginx
# package provides it
my ($abi) = `dpkg-query -W -f='\${Provides}' nginx` =~ /(nginx-abi-[0-9.]+-\d+)/;
ok($abi, "Debian's nginx provides an ABI ($abi)");
my $depends = `dpkg-deb -f '$module_deb' Depends`;
like($depends, qr/(?:^|, )\Q$abi\E(?:,|$)/m, "the module depends on $abi");
like($depends, qr/seadragon-common \(= \Q$version\E\)/, 'and on its companion, same version');

# every file the two packages hold
my @files;
for my $deb ($module_deb, $common_deb) {
    for (split /\n/, `dpkg-deb -c '$deb'`) {
        my ($path) = m{^-\S+\s.*?\s\.(/\S+)$} or next;
        push @files, $path;
    }
}
ok(grep({ $_ eq '/usr/lib/nginx/modules/ngx_seadragon_module.so' } @files)
   && grep({ $_ eq '/usr/sbin/seadragon-store' } @files)
   && grep({ $_ eq '/usr/share/seadragon/html/admin.html' } @files)
   && grep({ $_ eq '/usr/share/seadragon/html/chat.html' } @files)
   && grep({ m{/examples/seadragon\.conf$} } @files),
   'the module, the store tool, the admin and chat pages and the example are packaged');

my $enabled = '/etc/nginx/modules-enabled/50-mod-http-seadragon.conf';
my $store = '/var/lib/seadragon/store';

END {
    # whatever happened above, the machine is left as it was
    if ($> == 0 && defined $store) {
        system("dpkg --purge libnginx-mod-http-seadragon seadragon-common >/dev/null 2>&1");
    }
}

($status, $out) = run("dpkg -i '$common_deb' '$module_deb'");
is($status, 0, 'dpkg -i installs both') or diag($out);
ok(-f $_, "installed $_") for @files;
is(readlink($enabled), '/usr/share/nginx/modules-available/mod-http-seadragon.conf',
   'the module is enabled in modules-enabled');
is(slurp('/usr/share/nginx/modules-available/mod-http-seadragon.conf'),
   "load_module modules/ngx_seadragon_module.so;\n", 'its load file');
my @st = stat $store;
is(@st ? scalar getpwuid($st[4]) : 'missing', 'www-data',
   "the store's directory belongs to nginx's worker user");
($status, $out) = run("seadragon-store --store $store whitelist list");
is("$status [$out]", '0 []', 'the store is an empty one');

# nginx -t as Debian's nginx.conf would load it: modules-enabled, then the
# example from the package's examples
my ($example) = grep { m{/examples/seadragon\.conf$} } @files;
my $conf = "$tmp/nginx.conf";
spew($conf, <<"EOC");
user www-data;
include /etc/nginx/modules-enabled/*.conf;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events {}
http {
    include /etc/nginx/mime.types;
    include $example;
}
EOC
($status, $out) = run("$nginx -t -c '$conf'");
is($status, 0, 'nginx -t accepts the example with the installed module') or diag($out);
like($out, qr/test is successful/, 'nginx -t: test is successful');

# an empty store goes with dpkg -r; everything else the packages put there
($status, $out) = run('dpkg -r libnginx-mod-http-seadragon seadragon-common');
is($status, 0, 'dpkg -r removes both') or diag($out);
is(join(' ', grep { -e $_ } @files), '', 'no file of the packages is left');
ok(!-e $enabled, 'the module is no longer enabled');
ok(!-e $store, 'the empty store is gone');
($status, $out) = run('dpkg --purge libnginx-mod-http-seadragon seadragon-common');
is($status, 0, 'dpkg --purge succeeds') or diag($out);
ok(!-e "$enabled.removed" && !-l "$enabled.removed", 'purge removes the disabled link too');
ok(!-e '/var/lib/seadragon', 'nothing is left in /var/lib');
is(`dpkg-query -W -f='\${Status}' libnginx-mod-http-seadragon seadragon-common 2>/dev/null`, '',
   'dpkg knows neither package any more');

# a store with entries is kept by dpkg -r and removed by --purge
($status, $out) = run("dpkg -i '$common_deb' '$module_deb'");
is($status, 0, 'installed again') or diag($out);
($status, $out) = run("seadragon-store --store $store whitelist add 192.0.2.7");
is($status, 0, 'a whitelist entry is added') or diag($out);
($status, $out) = run('dpkg -r libnginx-mod-http-seadragon seadragon-common');
is($status, 0, 'dpkg -r') or diag($out);
like($out, qr{kept /var/lib/seadragon/store}, 'says it keeps the store');
ok(-f "$store/data.mdb", 'a store with entries is kept');
($status, $out) = run('dpkg --purge libnginx-mod-http-seadragon seadragon-common');
is($status, 0, 'dpkg --purge') or diag($out);
ok(!-e '/var/lib/seadragon', 'purge removes the store');

done_testing();
