# vypusk: the browser pages in English. Every message here has its Russian twin in
# ../ru/vypusk.ftl (a unit test checks both name the same messages).

## Frame
console = Console
console-brand = console
nav-distributions = Distributions
nav-licenses = Licenses
nav-products = Products
nav-keys = API keys
nav-users = Users
nav-audit = Audit log
nav-reports = Reports
log-out = Log out
switch-language = Русский
yes = yes
no = no
never = never
create = Create
save = Save
edit = Edit
fields = Fields
filter = Filter
search = Search
cancel = Cancel
created = Created
rename = Rename
forget = Forget
import = Import
export-csv = Export CSV
preview = Preview
days = { $count } days
never-lapses = never lapses

## Notices after an action
notice-created = Created.
notice-saved = Saved.
notice-published = Published: clients see this release from now on.
notice-yanked = Yanked: clients are no longer offered this release.
notice-deleted = Deleted.
notice-uploaded = Uploaded.
notice-main = The main file is changed.
notice-removed = The file is removed.
notice-revoked = The API key is revoked.
notice-password = Your password is changed.
notice-unpublished = Unpublished: clients no longer see this distribution.
notice-republished = Published again: clients see this distribution.
notice-revoked-license = Revoked: the license's installations get no download links from now on.
notice-restored-license = Restored: the license works again.

## Errors and login
error-csrf = This form came without its security (CSRF) token, or with a wrong one, so nothing was done. Open the form again and resend it.
error-needs-permission = Your roles do not allow this page (it needs the { $permission } permission).
error-form-too-large = The form is larger than { $bytes } bytes.
error-log-in = Log in
login-title = Log in
login-hint = A user's login and password, or an API key in the password field and an empty user.
login-user = User
login-password = Password or API key
login-button = Log in
login-wrong = wrong user name, password or API key
login-no-permission = these credentials may not read statistics
logout-hint = Ends this session on every server of the installation.

## Home
home-logged-in = Logged in as { $login }.
home-permissions = Permissions: { $list }.
home-distributions = Distributions and releases
home-distributions-what = create, upload, publish, yank
home-licenses-what = customers, features, subscriptions, CSV import and export
home-products-what = names of license products and features
home-keys-what = for scripts and CI
home-users = Users and roles
home-audit-what = who did what and when
home-statistics = Download statistics
home-password = Your password

## Lists
pager-nothing = Nothing yet.
pager-of = of
pager-previous = previous
pager-next = next

## Distributions
distribution-new = New distribution
distribution-code = Code (TYPE)
distribution-code-hint = Code (the client's TYPE; letters, digits, _ - .; cannot change later)
distribution-name = Name
distribution-description = Description
distribution-developer = Developer
distribution-label = Label
distribution-label-hint = Label (shown to clients as the module's version)
distribution-promo = Promo link
distribution-visible = Visible to clients
distribution-unpublished = unpublished
distribution-license = License
distribution-free = free
distribution-gate-legend = License gate (both numbers, or neither for a free distribution)
distribution-gate-now = Now:
distribution-hide-unlicensed = Hide from clients without the license
distribution-scheme-short = Versions
distribution-scheme-hint = Version scheme (fixed once releases exist)
scheme-1c = 1c (four numbers)
distribution-unpublish = Unpublish
distribution-unpublish-note = Clients stop seeing this distribution and its releases; nothing is deleted.
distribution-republish = Publish again
product = Product
feature = Feature
catalogue-link = Names of products and features

## Releases
releases = Releases
release = Release
release-new = New release
release-version = Version
release-status = Status
release-files = Files
release-compatibility = Compatibility
release-published-at = Published
release-published-on = Published { $at }
release-yanked-because = Yanked: { $reason }
releases-none = No releases.
releases-none-with-status = No releases with this status.
status-all = all
status-draft = draft
status-published = published
status-yanked = yanked
prerelease = pre-release
release-prerelease-hint = Pre-release (offered only to installations that accept betas)
compat-legend = Compatibility: configurations and their versions (* = any configuration; an empty minimum = from any version)
compat-conf = Configuration
compat-min = Minimum version
compat-max = Maximum version (empty: no limit)
compat-any-configuration = any configuration
compat-range = { $conf } { $range }
compat-or-later = { $conf } { $min } or later
rows-hint = Save to get more empty rows; clear a row to remove it.
changelog = Changelog
changelog-markdown = Changelog (Markdown)
changelog-preview = Preview changelog
metadata-legend = Metadata (key = value)
metadata-key = Key
metadata-value = Value
release-create-draft = Create draft
release-draft-note = A release starts as a draft: upload its files, then publish it.
release-publish-button = Publish…
release-yank-button = Yank…
release-delete-draft = Delete draft
file-name = Name
file-size = Size
file-main = Main
file-main-mark = main
file-make-main = Make main
file-remove = Remove
files-none = No files yet.
upload = Upload
upload-hint = Files (up to { $max } each; a file of the same name is replaced)
upload-stored = Uploaded: %count% file(s).
upload-failed = %name% was not stored: %reason%

## Publish and yank
publish = Publish
yank = Yank
publish-now = Publish now
yank-now = Yank now
back-to-release = Back to the release
clients-will-see = What clients will see
confirm-distribution-hidden = The distribution is unpublished: no client sees this release until the distribution is published again.
confirm-module = Module
confirm-prerelease = pre-release, offered only to installations that accept betas
confirm-offered-to = Offered to
confirm-nobody = nobody: add a compatibility row first
confirm-main-file = main: the download link
confirm-no-files = none
confirm-changelog = Changelog as shown
confirm-license-free = free: every installation gets download links
confirm-license-gated = only installations whose license has { $what } get download links
confirm-license-hidden = others do not see the release
confirm-license-shown = others see it without links
confirm-yank-effect = Installations are no longer offered { $version }; those that already have it keep it.
confirm-yank-nothing-left = No other published release remains: clients are offered nothing.
confirm-yank-instead = Clients are offered { $version } as the newest release instead.
confirm-yank-final = A yanked release cannot be published again.
yank-reason = Reason (for your records)

## API keys
key-created = Key “{ $name }” created
key-shown-once = Copy it now: it is shown only this once and stored hashed.
key-how-to-use = Use it as x-api-key: … or Authorization: Bearer … with the vendor API.
key-new = New key
key-name-hint = Name (who or what uses it)
key-permissions-hint = Permissions (at most your roles'):
key-create = Create key
keys-all = All keys
keys-yours = Your keys
key-name = Name
key-prefix = Starts with
key-permissions = Permissions
key-user = User
key-last-used = Last used
key-revoke = Revoke

## Users
user-created = User { $login } created
user-link-hint = Give the user this one-time link to set a password. It is shown only now, works once and expires { $expires }.
user-new = New user
user-login = Login
user-roles = Roles
user-roles-hint = owner: everything, users included · release: distributions, releases, files · support: licenses and customers · viewer: catalog and statistics, no customer data
user-create = Create user
user-roles-state = Roles and state
user-password = Password
user-disabled = disabled
user-password-set = set
user-password-not-yet = not yet

## Account and passwords
account = Your account
account-change-password = Change your password
account-by-key = This session was opened with an API key. Log in with your password to change it.
account-current = Current password
account-sessions-end = Every session of yours ends, this one included: you log in again with the new password.
password-new-hint = New password (at least 12 characters)
password-again = New password again
password-mismatch = the two passwords differ
set-password-title = Set your password
set-password-button = Set password
set-password-then-login = Then log in

## Audit log
audit-when = When (UTC)
audit-who = Who
audit-channel = Channel
audit-action = Action
audit-target = Target
audit-outcome = Outcome
audit-details = Details
audit-client = From
audit-from = From
audit-to = To
audit-any = any
audit-refused-only = refused only
via-api = vendor API
via-console = console
via-cli = CLI
via-login = login

## Licenses
license-search = Key, customer or ITN
license-new = New license
license-key = Key
license-key-hint = Key (letters, digits and -, 4 to 64)
license-customer = Customer
license-itn = ITN
license-features = Features (product/feature)
license-state = State
license-active = active
license-revoked = revoked
license-beta = beta
license-beta-hint = Beta: gets pre-releases
license-features-legend = Features (a distribution's license product/feature numbers) and subscription end
license-until = Active until
license-until-hint = Active until (empty: never lapses, or the feature's default subscription when it is added)
license-rows-hint = Save to get more empty rows; clear a row to remove the feature.
license-revoke = Revoke
license-restore = Restore
license-revoke-note = Every installation with this key stops getting download links at once.
import-csv = Import CSV
import-hint = Columns key, customer, itn, beta, revoked, product, feature, active_until; one line per feature; UTF-8 or Windows-1251, “,” or “;”. All or nothing: one bad line and nothing is imported. A license in the file replaces the one with its key.
import-done = Imported { $licenses } licenses with { $features } features.

## Products
products-title = Products and features
products-hint = Names for the license numbers that gate distributions (product / feature) and that licenses carry. A feature's default subscription is given to a license the feature is added to without an end date.
product-number = product { $number }
product-number-label = Product number
product-name = Name
feature-number = Feature number
feature-default = Default subscription
feature-default-hint = Default days (empty: never lapses)
feature-name-it = Name the feature
product-name-it = Name the product
product-forget = Forget the product
products-none = No product is named yet.

## Reports
reports-brand = reports
report-title = Download statistics
report-overview = Download statistics: overview
report-overview-of = Download statistics: overview of { $distribution }
report-distribution-title = { $code }: statistics
report-from = From (UTC)
report-to = To (UTC)
report-all-distributions = All distributions
report-days = Installed base: last N days
report-show = Show
report-no-data = No data for this selection.
report-total = Total
report-share = Share
report-no-conf = (none)
report-no-license = (no license)
report-new-install = (new install)
report-nothing-installed = (nothing installed)
report-downloads-per-day = Downloads per day
report-downloads-by-conf = Downloads by configuration
report-share-by-conf = Share by configuration
report-top-releases = Top releases
report-top-note = The { $top } most downloaded of { $all } releases; the CSV has all of them.
report-releases-downloaded = Releases downloaded
report-downloads-per-release = Downloads per release
report-base-chart = Installed base by version, last { $days } days
report-base-title = Installed base by version (installations seen in the last { $days } days)
report-base-note-licensed = An installation is a license key plus CONF; its version is the one its latest check reported.
report-base-note-free = An installation is a client address (hashed) plus CONF; its version is the one its latest check reported.
report-upgrade-paths = Upgrade paths (installed → downloaded version)
report-back-to-overview = ← Overview
col-day = Day (UTC)
col-distribution = Distribution
col-name = Name
col-release_id = Release id
col-version = Version
col-conf = Configuration
col-license = License
col-downloads = Downloads
col-completed = Completed
col-bytes = Bytes sent
col-from_version = Installed version
col-to_version = Downloaded version
col-installations = Installations
