package ui

import (
	"fmt"
	"strings"
)

// Languages the dashboard speaks.
const (
	LangEN = "en"
	LangZH = "zh"
)

// messages is the one translation table: every string the dashboard shows
// goes through it. Each entry is {English, 中文}; fmt verbs allowed.
var messages = map[string][2]string{
	"app.title":        {"KeyPool admin", "KeyPool 管理后台"},
	"lang.switch":      {"中文", "English"},
	"lang.label":       {"Language", "语言"},
	"tab.overview":     {"Overview", "概览"},
	"tab.keys":         {"Keys", "密钥"},
	"tab.tokens":       {"Client tokens", "客户端令牌"},
	"nav.disconnect":   {"Disconnect", "断开连接"},
	"nav.refresh":      {"Refresh", "刷新"},
	"nav.connectedTo":  {"Connected to %s", "已连接到 %s"},
	"connect.title":    {"Connect to your proxy", "连接到你的代理"},
	"connect.url":      {"Proxy URL", "代理地址"},
	"connect.key":      {"Admin key", "管理密钥"},
	"connect.remember": {"Remember on this device", "在此设备上记住"},
	"connect.rememberHint": {"Otherwise the key is kept only until this tab closes (session storage).",
		"否则密钥只保存到此标签页关闭为止（会话存储）。"},
	"connect.submit":      {"Connect", "连接"},
	"connect.busy":        {"Connecting…", "正在连接…"},
	"connect.needURL":     {"Enter the proxy's URL.", "请输入代理地址。"},
	"connect.needKey":     {"Enter the admin key.", "请输入管理密钥。"},
	"err.unreachable":     {"Cannot reach %s. Is the proxy running, and is the URL right?", "无法连接 %s。代理是否在运行、地址是否正确？"},
	"err.cors":            {"The proxy at %s does not allow this page's origin. Set ALLOWED_ORIGINS=%s on the proxy (comma-separated with any others) and restart it.", "%s 上的代理不允许此页面的来源。请在代理上设置 ALLOWED_ORIGINS=%s（多个用逗号分隔）并重启。"},
	"err.unauthorized":    {"Wrong admin key: the proxy answered 401.", "管理密钥错误：代理返回 401。"},
	"err.http":            {"The proxy answered %d: %s", "代理返回 %d：%s"},
	"err.decode":          {"Unexpected answer from the proxy: %s", "代理返回了无法识别的内容：%s"},
	"ov.title":            {"Overview", "概览"},
	"ov.provider":         {"Provider", "服务商"},
	"ov.total":            {"Total", "总数"},
	"ov.active":           {"Active", "启用"},
	"ov.available":        {"Available", "可用"},
	"ov.cooling":          {"Cooling", "冷却中"},
	"ov.disabled":         {"Disabled", "已禁用"},
	"ov.successRate":      {"Success rate", "成功率"},
	"ov.requests":         {"Requests", "请求数"},
	"ov.all":              {"All providers", "全部服务商"},
	"ov.store":            {"Store", "存储"},
	"ov.storeOK":          {"%s: healthy", "%s：正常"},
	"ov.storeBad":         {"%s: degraded since %s (%s)", "%s：自 %s 起降级（%s）"},
	"ov.reset":            {"Reset usage", "清零用量"},
	"ov.resetConfirm":     {"Reset %s usage?", "确定清零 %s 的用量？"},
	"ov.resetDone":        {"%d keys of %s reset.", "已清零 %s 的 %d 个密钥。"},
	"ov.noKeys":           {"No keys yet. Add some on the Keys screen.", "还没有密钥。请在“密钥”页添加。"},
	"chart.title":         {"Keys per provider by state", "各服务商密钥状态"},
	"chart.other":         {"inactive / exhausted", "停用 / 用尽"},
	"common.yes":          {"Yes", "确定"},
	"common.no":           {"Cancel", "取消"},
	"common.save":         {"Save", "保存"},
	"common.loading":      {"Loading…", "加载中…"},
	"keys.title":          {"Keys", "密钥"},
	"keys.filterProvider": {"Provider", "服务商"},
	"keys.filterState":    {"State", "状态"},
	"keys.search":         {"Search key, id, description, tag", "搜索密钥、id、描述、标签"},
	"keys.any":            {"All", "全部"},
	"keys.sort":           {"Sort by", "排序"},
	"sort.default":        {"Provider, then oldest first", "服务商，然后按创建时间"},
	"sort.created":        {"Created", "创建时间"},
	"sort.lastUsed":       {"Last used", "最近使用"},
	"sort.requests":       {"Requests", "请求数"},
	"sort.successRate":    {"Success rate", "成功率"},
	"keys.count":          {"%d of %d keys", "共 %[2]d 个密钥，显示 %[1]d 个"},
	"keys.page":           {"Page %d of %d", "第 %d / %d 页"},
	"keys.prev":           {"Previous", "上一页"},
	"keys.next":           {"Next", "下一页"},
	"keys.none":           {"No keys match.", "没有匹配的密钥。"},
	"col.key":             {"Key", "密钥"},
	"col.provider":        {"Provider", "服务商"},
	"col.state":           {"State", "状态"},
	"col.usage":           {"Usage", "用量"},
	"col.success":         {"Success", "成功率"},
	"col.lastUsed":        {"Last used", "最近使用"},
	"col.description":     {"Description", "描述"},
	"col.tags":            {"Tags", "标签"},
	"col.actions":         {"Actions", "操作"},
	"state.active":        {"active", "启用"},
	"state.inactive":      {"inactive", "已停用"},
	"state.exhausted":     {"exhausted", "已用尽"},
	"state.cooling":       {"cooling", "冷却中"},
	"state.coolingUntil":  {"cooling until %s", "冷却至 %s"},
	"state.disabled":      {"disabled", "已禁用"},
	"state.disabledWhy":   {"disabled: %s", "已禁用：%s"},
	"never":               {"never", "从未"},
	"unlimited":           {"unlimited", "不限"},
	"act.edit":            {"Edit", "编辑"},
	"act.delete":          {"Delete", "删除"},
	"act.test":            {"Test", "检测"},
	"act.deleteConfirm":   {"Delete this key?", "确定删除此密钥？"},
	"act.deleted":         {"Key %s deleted.", "已删除密钥 %s。"},
	"act.updated":         {"Key %s updated.", "已更新密钥 %s。"},
	"act.testing":         {"Testing…", "检测中…"},
	"act.testOK":          {"OK (%d ms)", "正常（%d 毫秒）"},
	"act.testFail":        {"%s: %d %s", "%s：%d %s"},
	"edit.active":         {"Active", "启用"},
	"edit.maxRequests":    {"Max requests (0 = unlimited)", "最大请求数（0 为不限）"},
	"edit.weight":         {"Weight", "权重"},
	"edit.invalidNumber":  {"%s must be a whole number.", "%s 必须是整数。"},
	"add.title":           {"Add a key", "添加密钥"},
	"add.provider":        {"Provider", "服务商"},
	"add.apiKey":          {"API key", "API 密钥"},
	"add.maxRequests":     {"Max requests (empty = unlimited)", "最大请求数（留空为不限）"},
	"add.description":     {"Description", "描述"},
	"add.tags":            {"Tags (comma-separated)", "标签（逗号分隔）"},
	"add.submit":          {"Add key", "添加"},
	"add.done":            {"Added %s.", "已添加 %s。"},
	"bulk.title":          {"Bulk import", "批量导入"},
	"bulk.keys":           {"One key per line", "每行一个密钥"},
	"bulk.submit":         {"Import", "导入"},
	"bulk.busy":           {"Importing…", "正在导入…"},
	"bulk.summary":        {"%d added, %d duplicates, %d invalid", "新增 %d 个，重复 %d 个，无效 %d 个"},
	"bulk.line":           {"Line %d", "第 %d 行"},
	"bulk.empty":          {"Paste at least one key.", "请至少粘贴一个密钥。"},
	"bulk.added":          {"added", "已添加"},
	"bulk.duplicate":      {"duplicate", "重复"},
	"bulk.invalid":        {"invalid", "无效"},
	"sel.count":           {"%d selected", "已选 %d 个"},
	"sel.all":             {"Select all matching (%d)", "全选匹配项（%d）"},
	"sel.none":            {"Clear selection", "取消选择"},
	"sel.page":            {"Select this page", "选择本页"},
	"sel.row":             {"Select %s", "选择 %s"},
	"sel.enable":          {"Enable", "启用"},
	"sel.disable":         {"Disable", "停用"},
	"sel.test":            {"Test", "检测"},
	"sel.delete":          {"Delete", "删除"},
	"sel.deleteConfirm":   {"Delete %d keys?", "确定删除 %d 个密钥？"},
	"sel.working":         {"Working… %d / %d", "处理中… %d / %d"},
	"sel.done.enable":     {"%d keys enabled, %d failed.", "已启用 %d 个密钥，失败 %d 个。"},
	"sel.done.disable":    {"%d keys disabled, %d failed.", "已停用 %d 个密钥，失败 %d 个。"},
	"sel.done.test":       {"%d keys passed the test, %d failed.", "检测通过 %d 个密钥，未通过 %d 个。"},
	"sel.done.delete":     {"%d keys deleted, %d not found.", "已删除 %d 个密钥，%d 个未找到。"},
	"keys.filterTag":      {"Tag", "标签"},
	"bulk.file":           {"Or read a file", "或读取文件"},
	"bulk.progress":       {"%d / %d lines", "%d / %d 行"},
	"tab.playground":      {"Playground", "试用"},
	"play.title":          {"Playground", "试用"},
	"play.hint":           {"Send one prompt through the proxy with a client token (not the admin key), and see which key served it.", "用客户端令牌（不是管理密钥）通过代理发送一条提示，查看由哪个密钥处理。"},
	"play.model":          {"Model", "模型"},
	"play.strategy":       {"Strategy", "策略"},
	"play.token":          {"Client token", "客户端令牌"},
	"play.prompt":         {"Prompt", "提示"},
	"play.send":           {"Send", "发送"},
	"play.busy":           {"Sending…", "发送中…"},
	"play.meta":           {"Status %d · served by %s", "状态 %d · 由 %s 处理"},
	"play.needToken":      {"Enter a client token (create one under Client tokens).", "请输入客户端令牌（可在“客户端令牌”页创建）。"},
	"play.needPrompt":     {"Enter a model and a prompt.", "请输入模型和提示。"},
	"tok.title":           {"Client tokens", "客户端令牌"},
	"tok.name":            {"Name", "名称"},
	"tok.create":          {"Create token", "创建令牌"},
	"tok.created":         {"Copy this token now: it is not shown again.", "请立即复制此令牌：它不会再次显示。"},
	"tok.masked":          {"Token", "令牌"},
	"tok.source":          {"Source", "来源"},
	"tok.createdAt":       {"Created", "创建时间"},
	"tok.revoke":          {"Revoke", "吊销"},
	"tok.revokeConfirm":   {"Revoke this token?", "确定吊销此令牌？"},
	"tok.env":             {"from CLIENT_TOKENS", "来自 CLIENT_TOKENS"},
	"tok.none":            {"No tokens.", "没有令牌。"},
	"tok.needName":        {"Enter a name.", "请输入名称。"},
}

// missing records keys asked for but absent from the table (tests check
// it stays empty).
var missing = map[string]bool{}

// T translates key into lang and formats it with args.
func T(lang, key string, args ...any) string {
	m, ok := messages[key]
	if !ok {
		missing[key] = true
		return key
	}
	s := m[0]
	if lang == LangZH {
		s = m[1]
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// LangFor picks the dashboard language for a browser language tag.
func LangFor(browser string) string {
	if strings.HasPrefix(strings.ToLower(browser), "zh") {
		return LangZH
	}
	return LangEN
}
