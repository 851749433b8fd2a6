// Chinese first, English available. Every text the console shows goes
// through t(); kinds of events, devices and commands through kindName().

export type Lang = "zh" | "en";

const zh = {
  title: "智路 运行监控台",
  login: "登录",
  logout: "退出",
  username: "用户名",
  password: "密码",
  loginFailed: "登录失败",
  language: "English",
  languageLabel: "切换语言",
  connected: "实时",
  disconnected: "已断开，重连中…",
  degraded: "降级运行",
  dataTime: "数据时间",
  map: "路网地图",
  timespace: "时空图",
  events: "事件",
  proposals: "待审批",
  devices: "设备",
  audit: "审计日志",
  details: "详情",
  noEvents: "当前无活动事件",
  noProposals: "没有待审批的控制建议",
  approve: "批准",
  reject: "驳回",
  edit: "修改",
  reason: "理由",
  reasonRequired: "驳回或修改须填写理由",
  newValue: "新值",
  confirm: "确定",
  cancel: "取消",
  rule: "规则",
  evidence: "依据",
  severity: "等级",
  started: "开始",
  detected: "发现",
  ended: "结束",
  extent: "范围",
  lowestVisibility: "最低能见度",
  surfaceTemp: "路面温度",
  vehicle: "车辆",
  device: "设备",
  kind: "类型",
  command: "指令",
  confirmed: "已确认状态",
  commanded: "下发状态",
  pending: "执行中",
  online: "在线",
  offline: "离线",
  lastContact: "最近通信",
  search: "搜索",
  searchAudit: "搜索审计日志（人员、动作、对象、内容）",
  more: "更多",
  actor: "操作人",
  action: "动作",
  target: "对象",
  time: "时间",
  live: "实时（近3小时）",
  period: "历史时段",
  from: "从",
  hours: "小时",
  show: "显示",
  speed: "速度",
  flow: "流量",
  density: "密度",
  up: "上行",
  down: "下行",
  both: "双向",
  noData: "无数据",
  viewerNote: "只读账户：不能审批",
  createdBy: "提出",
  expires: "到期",
  status: "状态",
  history: "历史",
  forecast: "预测",
  forecastBand: "预测区间",
  noForecast: "暂无预测",
  station: "检测站",
  segment: "路段",
  track: "轨迹",
  class: "车型",
  heading: "方向角",
  zoomIn: "放大",
  zoomOut: "缩小",
  resetView: "全线",
  mapHelp: "拖动平移，滚轮缩放；键盘：方向键平移，+/− 缩放，Enter 选中最近的对象",
  legendSpeed: "速度 km/h",
  faults: "故障",
  all: "全部",
  decidedBy: "决定人",
  applied: "已下发",
  none: "无",
  posted: "标准限速",
  vehicles: "车辆",
  hazmatOnly: "仅危化品车",
  activeEvents: "活动事件",
  role: "角色",
  error: "错误",
  lagged: "实时数据有丢失，已重新加载",
  alarmUnanswered: "安全提议逾期未处理",
  alarmLevel: "级别",
  noHazmat: "禁危化品",
} as const;

export type Key = keyof typeof zh;

const en: Record<Key, string> = {
  title: "zhilu Operations Console",
  login: "Log in",
  logout: "Log out",
  username: "User name",
  password: "Password",
  loginFailed: "Login failed",
  language: "中文",
  languageLabel: "Switch language",
  connected: "Live",
  disconnected: "Disconnected, reconnecting…",
  degraded: "Degraded",
  dataTime: "Data time",
  map: "Map",
  timespace: "Time–space",
  events: "Events",
  proposals: "Proposals",
  devices: "Devices",
  audit: "Audit log",
  details: "Details",
  noEvents: "No active events",
  noProposals: "No proposals waiting",
  approve: "Approve",
  reject: "Reject",
  edit: "Edit",
  reason: "Reason",
  reasonRequired: "A reason is required to reject or edit",
  newValue: "New value",
  confirm: "OK",
  cancel: "Cancel",
  rule: "Rule",
  evidence: "Evidence",
  severity: "Severity",
  started: "Started",
  detected: "Detected",
  ended: "Ended",
  extent: "Extent",
  lowestVisibility: "Lowest visibility",
  surfaceTemp: "Surface temperature",
  vehicle: "Vehicle",
  device: "Device",
  kind: "Kind",
  command: "Command",
  confirmed: "Confirmed",
  commanded: "Commanded",
  pending: "Pending",
  online: "Online",
  offline: "Offline",
  lastContact: "Last contact",
  search: "Search",
  searchAudit: "Search the audit log (who, action, target, detail)",
  more: "More",
  actor: "Who",
  action: "Action",
  target: "Target",
  time: "Time",
  live: "Live (last 3 h)",
  period: "Past period",
  from: "From",
  hours: "hours",
  show: "Show",
  speed: "Speed",
  flow: "Flow",
  density: "Density",
  up: "Up",
  down: "Down",
  both: "Both",
  noData: "No data",
  viewerNote: "Read-only account: cannot decide",
  createdBy: "Proposed",
  expires: "Expires",
  status: "Status",
  history: "History",
  forecast: "Forecast",
  forecastBand: "Forecast band",
  noForecast: "No forecast yet",
  station: "Station",
  segment: "Segment",
  track: "Track",
  class: "Class",
  heading: "Heading",
  zoomIn: "Zoom in",
  zoomOut: "Zoom out",
  resetView: "Whole corridor",
  mapHelp: "Drag to pan, wheel to zoom; keys: arrows pan, +/− zoom, Enter picks the nearest item",
  legendSpeed: "Speed km/h",
  faults: "Faults",
  all: "All",
  decidedBy: "Decided by",
  applied: "Applied",
  none: "none",
  posted: "posted limit",
  vehicles: "Vehicles",
  hazmatOnly: "Hazmat only",
  activeEvents: "Active events",
  role: "Role",
  error: "Error",
  lagged: "Live data was lost; reloaded",
  alarmUnanswered: "Safety proposal unanswered",
  alarmLevel: "level",
  noHazmat: "no hazmat",
};

const kindsZh: Record<string, string> = {
  incident: "交通事故",
  congestion: "拥堵",
  fog: "团雾",
  ice: "路面结冰",
  hazmat_speeding: "危化品车超速",
  hazmat_stopped: "危化品车违停",
  hazmat_restricted_zone: "危化品车驶入禁行隧道",
  hazmat_driving_time: "危化品车疲劳驾驶",
  wrong_way: "逆行",
  detector_fault: "检测器故障",
  terminal_alarm: "车载终端报警",
  tunnel_emergency: "隧道紧急事件",
  speed_limit: "可变限速",
  message: "情报板",
  fog_lights: "雾灯",
  entry: "收费站入口",
  deicing: "除冰喷淋",
  tunnel_plan: "隧道预案",
  lane_control: "车道控制",
  detector: "检测站",
  weather: "气象站",
  vsl: "限速标志",
  vms: "情报板",
  deicer: "除冰设施",
  interchange: "互通/收费站",
  tunnel: "隧道",
  service_area: "服务区",
  hazmat: "危化品车",
  truck: "货车",
  bus: "客车",
  car: "小客车",
  open: "开放",
  metered: "限流",
  closed: "关闭",
  on: "开",
  off: "关",
  guidance: "诱导",
  tail_marking: "尾迹警示",
  warning_flash: "警示闪烁",
  pending_s: "待审批",
  approved: "已批准",
  edited: "已修改",
  rejected: "已驳回",
  expired: "已过期",
  superseded: "已被取代",
  viewer: "查看员",
  operator: "值班员",
  admin: "管理员",
};

const kindsEn: Record<string, string> = {
  incident: "Incident",
  congestion: "Congestion",
  fog: "Fog",
  ice: "Ice",
  hazmat_speeding: "Hazmat speeding",
  hazmat_stopped: "Hazmat stopped",
  hazmat_restricted_zone: "Hazmat in closed tunnel",
  hazmat_driving_time: "Hazmat driving time",
  wrong_way: "Wrong-way driver",
  detector_fault: "Detector fault",
  terminal_alarm: "Terminal alarm",
  tunnel_emergency: "Tunnel emergency",
  speed_limit: "Speed limit",
  message: "Message sign",
  fog_lights: "Fog lights",
  entry: "Toll entry",
  deicing: "De-icing",
  tunnel_plan: "Tunnel plan",
  lane_control: "Lane control",
  detector: "Detector station",
  weather: "Weather station",
  vsl: "Speed-limit sign",
  vms: "Message sign",
  deicer: "De-icer",
  interchange: "Interchange",
  tunnel: "Tunnel",
  service_area: "Service area",
  hazmat: "Hazmat truck",
  truck: "Truck",
  bus: "Bus",
  car: "Car",
  open: "open",
  metered: "metered",
  closed: "closed",
  on: "on",
  off: "off",
  guidance: "guidance",
  tail_marking: "tail marking",
  warning_flash: "warning flash",
  pending_s: "pending",
  approved: "approved",
  edited: "edited",
  rejected: "rejected",
  expired: "expired",
  superseded: "superseded",
  viewer: "viewer",
  operator: "operator",
  admin: "admin",
};

let lang: Lang = (localStorage.getItem("zhilu.lang") as Lang) === "en" ? "en" : "zh";

export function getLang(): Lang {
  return lang;
}

export function setLang(l: Lang): void {
  lang = l;
  localStorage.setItem("zhilu.lang", l);
  document.documentElement.lang = l === "zh" ? "zh-CN" : "en";
  document.title = t("title");
}

export function t(k: Key): string {
  return lang === "zh" ? zh[k] : en[k];
}

/** A kind, state or role from the API, in the current language. */
export function kindName(k: string | null | undefined): string {
  if (k == null) return "—";
  const d = lang === "zh" ? kindsZh : kindsEn;
  return d[k] ?? k;
}

/** A stake in the K12+345 form. */
export function stake(m: number | null | undefined): string {
  if (m == null || !Number.isFinite(m)) return "—";
  const km = Math.floor(m / 1000);
  const r = Math.round(m - km * 1000);
  return `K${km}+${String(r).padStart(3, "0")}`;
}

let tzOffsetS = 8 * 3600;
export function setTz(s: number): void {
  tzOffsetS = s;
}

/** Data time in the corridor's time zone: "HH:MM:SS" (or with date). */
export function clock(ms: number | null | undefined, withDate = false): string {
  if (ms == null || !Number.isFinite(ms)) return "—";
  const d = new Date(ms + tzOffsetS * 1000);
  const iso = d.toISOString();
  return withDate ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}` : iso.slice(11, 19);
}

/** Wall time in the browser's zone. */
export function wall(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return "—";
  return new Date(ms).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { hour12: false });
}

export function dirName(d: string | null | undefined): string {
  if (d === "up") return t("up");
  if (d === "down") return t("down");
  if (d === "both") return t("both");
  return d ?? "—";
}
